package bulk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// The operations columns are op, every field of every operation, and terms: no field left
// out, none twice, none that no operation has.
func TestOperationColumnsAreTheOperationsFields(t *testing.T) {
	want := map[string]bool{colOp: true, colTerms: true}
	for _, op := range ledger.Ops {
		for _, f := range ledger.OpFields(op) {
			want[f] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range OperationColumns {
		if seen[c] {
			t.Errorf("column %q twice", c)
		}
		seen[c] = true
		if !want[c] {
			t.Errorf("column %q is no operation's field", c)
		}
	}
	for f := range want {
		if !slices.Contains(OperationColumns, f) {
			t.Errorf("field %q has no column", f)
		}
	}
}

// Imports that take the same contracts in opposite orders, at the same time, all complete:
// when PostgreSQL breaks a deadlock between them, the one it stopped starts again. The same
// file imported twice at once is written once.
func TestConcurrentImportsComplete(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	write := func(name, body string) *File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return PathFile(p)
	}
	var contracts strings.Builder
	contracts.WriteString("code,buyer,supplier,project,method,country,registry,standard,durability_years,term_start,term_end,signed_on,tonnes,delivery_mode\n")
	for _, c := range []string{"CC-A", "CC-B"} {
		fmt.Fprintf(&contracts, "%s,Acme,Supplier,P,biochar,US,puro,std,100,2026-01-01,2027-12-31,2025-12-01,100000,transfer\n", c)
	}
	if _, err := Import(ctx, s, []*File{write("contracts.csv", contracts.String())}, Options{}); err != nil {
		t.Fatal(err)
	}
	file := func(name string, order ...string) *File {
		var b strings.Builder
		b.WriteString("op,contract,tonnes,date\n")
		for _, c := range order {
			for i := range 300 {
				fmt.Fprintf(&b, "deliver,%s,0.001,2026-02-%02d\n", c, 1+i%28)
			}
		}
		return write(name, b.String())
	}
	ab, ba := file("ab.csv", "CC-A", "CC-B"), file("ba.csv", "CC-B", "CC-A")
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i, f := range []*File{ab, ba, ab, ba} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// small writes, so that each holds one contract while it asks for the other
				_, errs[i] = Import(ctx, s, []*File{{Name: f.Name, Open: f.Open}}, Options{Batch: 50})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, import %d: %v", round, i, err)
			}
		}
	}
	for _, c := range []string{"CC-A", "CC-B"} {
		st, err := s.Contract(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// each file delivers 0.3 t to each contract, and each file is written once
		if got := st.Position.Delivered.String(); got != "0.600" {
			t.Errorf("%s: delivered %s, want 0.600 (two files, each once)", c, got)
		}
	}
	res, err := s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Errorf("audit after concurrent imports: %v", res.Findings)
	}
}

// TestContractCSVLists: a contracts CSV's list members (the schedule, the registry projects)
// are taken as their JSON, so the contract parser reads them as lists.
func TestContractCSVLists(t *testing.T) {
	header := []string{"code", "registry", "registry_projects", "schedule"}
	b, err := contractJSON(header, []string{"C1", "car", `["CAR1335","CAR1480"]`, `[{"year":1,"tonnes":"10"}]`})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if ps, ok := m["registry_projects"].([]any); !ok || len(ps) != 2 || ps[1] != "CAR1480" {
		t.Errorf("registry_projects = %#v, want the list", m["registry_projects"])
	}
	if _, ok := m["schedule"].([]any); !ok {
		t.Errorf("schedule = %#v, want a list", m["schedule"])
	}
}
