package bulk

// Two files that share rows (the same keys, the same requests) and contradict each other
// (a key reused for another request, serials the other file delivers, more deliveries than a
// contract takes) are imported at the same time, through Import as the CLI calls it. The
// shared rows must be written once and found present by the other import, never refused;
// every contradiction must be refused once, naming its field; the totals must be those of
// the rows written, recounted from the raw rows, and the audit clean.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/recount"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// overlapRow is one operations row of the overlapping files.
type overlapRow struct {
	key, contract, tonnes, date, serials string
	retire                               bool
	why                                  string // "" for a good row; else the field the other file makes it break
}

func (r overlapRow) csv() string {
	op, who, reason := "deliver", "", ""
	if r.retire {
		op, who, reason = "retire", "Acme", "claim"
	}
	return strings.Join([]string{op, r.contract, r.tonnes, r.date, r.serials, who, reason, r.key}, ",")
}

// overlappingFiles returns the rows of the two files: shared rows in both, then each file's
// own rows, some of which contradict the other file's.
func overlappingFiles() (one, two []overlapRow) {
	var shared []overlapRow
	for i := 1; i <= 10; i++ {
		r := overlapRow{key: fmt.Sprintf("shared-d%d", i), contract: "OV-A", tonnes: "10", date: fmt.Sprintf("2025-02-%02d", i)}
		if i%2 == 1 {
			r.serials = fmt.Sprintf("PURO-OV:%d-%d", i*100+1, i*100+10)
		}
		shared = append(shared, r)
	}
	for i := 1; i <= 9; i += 2 {
		shared = append(shared, overlapRow{key: fmt.Sprintf("shared-r%d", i), contract: "OV-A", tonnes: "10", date: "2025-03-01",
			serials: fmt.Sprintf("PURO-OV:%d-%d", i*100+1, i*100+10), retire: true})
	}
	for i := 1; i <= 3; i++ {
		shared = append(shared, overlapRow{key: fmt.Sprintf("shared-n%d", i), contract: "OV-A", tonnes: "5", date: "2025-03-02", retire: true})
	}
	own := func(name string, clash string, serialOffset int) []overlapRow {
		var rows []overlapRow
		for i := 1; i <= 5; i++ {
			first := 5000 + i*100 + 1 + serialOffset
			rows = append(rows, overlapRow{key: fmt.Sprintf("%s-s%d", name, i), contract: "OV-A", tonnes: "20", date: "2025-04-01",
				serials: fmt.Sprintf("PURO-OV:%d-%d", first, first+19), why: "serials"})
		}
		for i := 1; i <= 4; i++ {
			rows = append(rows, overlapRow{key: fmt.Sprintf("clash-%d", i), contract: "OV-A", tonnes: clash, date: "2025-04-02", why: "key"})
		}
		for i := 1; i <= 20; i++ {
			rows = append(rows, overlapRow{key: fmt.Sprintf("%s-b%d", name, i), contract: "OV-B", tonnes: "10", date: "2025-05-01", why: "tonnes"})
		}
		return rows
	}
	one = append(slices.Clone(shared), own("one", "1", 0)...)
	two = append(slices.Clone(shared), own("two", "2", 10)...)
	for i := 1; i <= 3; i++ { // rows of the second file alone that nothing contradicts
		two = append(two, overlapRow{key: fmt.Sprintf("two-u%d", i), contract: "OV-A", tonnes: "3", date: "2025-04-03",
			serials: fmt.Sprintf("PURO-OV:%d-%d", 9000+i*10, 9000+i*10+2)})
	}
	return one, two
}

// overlapImport is one import's outcome.
type overlapImport struct {
	sum     Summary
	err     error
	refused map[int][]RowError // by line
}

func runOverlapping(t *testing.T, s *store.Store, files []*File, opt Options) []overlapImport {
	t.Helper()
	out := make([]overlapImport, len(files))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := opt
			var mu sync.Mutex
			out[i].refused = map[int][]RowError{}
			o.OnError = func(e RowError) {
				mu.Lock()
				out[i].refused[e.Line] = append(out[i].refused[e.Line], e)
				mu.Unlock()
			}
			<-start
			out[i].sum, out[i].err = Import(context.Background(), s, []*File{{Name: f.Name, Open: f.Open}}, o)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func overlapStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for code, tonnes := range map[string]string{"OV-A": "1000", "OV-B": "300"} {
		c, err := ledger.ParseContractJSON(strings.NewReader(`{"code":"` + code + `","buyer":"Acme","supplier":"Supplier","project":"P",
			"method":"biochar","country":"US","registry":"puro","standard":"std","durability_years":"100",
			"term_start":"2025-01-01","term_end":"2026-12-31","signed_on":"2024-12-01","tonnes":"` + tonnes + `","delivery_mode":"transfer"}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddContract(ctx, c, ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func writeRows(t *testing.T, name string, rows []overlapRow) *File {
	t.Helper()
	var b strings.Builder
	b.WriteString("op,contract,tonnes,date,serials,beneficiary,reason,key\n")
	for _, r := range rows {
		b.WriteString(r.csv() + "\n")
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return PathFile(p)
}

// checkRecount compares the contracts' figures, recounted from the raw rows, with what the
// written rows say, and with the store's positions, and runs the audit.
func checkRecount(t *testing.T, s *store.Store, written []overlapRow) {
	t.Helper()
	ctx := context.Background()
	want := map[string]*recount.Totals{"OV-A": {Contracted: 1_000_000, Open: 1_000_000}, "OV-B": {Contracted: 300_000, Open: 300_000}}
	for _, r := range written {
		kg, err := recount.Kg(r.tonnes)
		if err != nil {
			t.Fatal(err)
		}
		w := want[r.contract]
		if r.retire {
			w.Holding, w.Retired = w.Holding-kg, w.Retired+kg
		} else {
			w.Open, w.Delivered, w.Holding = w.Open-kg, w.Delivered+kg, w.Holding+kg
		}
	}
	rc, err := recount.Run(ctx, s.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rc.Problems {
		t.Errorf("recount: %s", p)
	}
	if n := rc.Entries - 2; n != len(written) {
		t.Errorf("%d entries besides the signatures, %d rows written", n, len(written))
	}
	for code, w := range want {
		if d := w.Diff(rc.Contracts[code].Totals); d != nil {
			t.Errorf("%s: the rows written and the recount differ: %v", code, d)
		}
		st, err := s.Contract(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		p := st.Position
		got := recount.Totals{Contracted: p.Contracted.Kg(), Open: p.Open.Kg(), Delivered: p.Delivered.Kg(), Holding: p.Holding.Kg(),
			Retired: p.Retired.Kg(), Replacements: p.Replacements.Kg(), Cancelled: p.Cancelled.Kg(), Reversed: p.Reversed.Kg(), BufferCancelled: p.BufferCancelled.Kg()}
		if d := rc.Contracts[code].Totals.Diff(got); d != nil {
			t.Errorf("%s: the recount and the store's position differ: %v", code, d)
		}
	}
	res, err := s.Audit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		t.Errorf("audit finding: %+v", f)
	}
}

// All or nothing (the CLI's default): the imports queue on the contracts' locks, so one
// writes its whole file and the other, finding the contradictions, writes nothing; its
// shared rows are present, never refused.
func TestOverlappingImportsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := overlapStore(t)
	one, two := overlappingFiles()
	rows := [][]overlapRow{one, two}
	outs := runOverlapping(t, s, []*File{writeRows(t, "one.csv", one), writeRows(t, "two.csv", two)}, Options{Batch: 8})
	winner := -1
	for i, o := range outs {
		switch {
		case o.err == nil:
			if winner >= 0 {
				t.Fatalf("both imports committed: %+v and %+v", outs[0].sum, outs[1].sum)
			}
			winner = i
			if o.sum.Written != len(rows[i]) || len(o.refused) > 0 {
				t.Errorf("import %d committed %+v with refusals %v; want every one of its %d rows written", i, o.sum, o.refused, len(rows[i]))
			}
		case !errors.Is(o.err, ErrRefused):
			t.Fatalf("import %d: %v, want success or ErrRefused", i, o.err)
		}
	}
	if winner < 0 {
		t.Fatalf("neither import committed: %v; %v", outs[0].err, outs[1].err)
	}
	loser := 1 - winner
	l := outs[loser]
	// The loser's rows: shared ones present, its contradictions refused on their field, the
	// second ten of its deliveries to OV-B refused for want of room (the winner took 200 t of
	// its 300 t), the rest valid.
	wantPresent, wantRefused := 0, 0
	for i, r := range rows[loser] {
		line := i + 2
		errs := l.refused[line]
		switch {
		case strings.HasPrefix(r.key, "shared-"):
			wantPresent++
			if errs != nil {
				t.Errorf("line %d (%s, in both files): refused %v; want it found present", line, r.key, errs)
			}
		case r.why == "tonnes" && atLeast(r.key, 11):
			wantRefused++
			wantField(t, line, r, errs, "tonnes")
		case r.why == "tonnes":
			if errs != nil {
				t.Errorf("line %d (%s): refused %v; 100 t of room remain for it", line, r.key, errs)
			}
		case r.why != "":
			wantRefused++
			wantField(t, line, r, errs, r.why)
		default:
			if errs != nil {
				t.Errorf("line %d (%s): refused %v", line, r.key, errs)
			}
		}
	}
	if l.sum.Present != wantPresent || l.sum.Refused != wantRefused || l.sum.Written != 0 || l.sum.Committed {
		t.Errorf("the refused import: %+v; want %d present, %d refused, nothing written", l.sum, wantPresent, wantRefused)
	}
	checkRecount(t, s, rows[winner])
}

// atLeast reports whether key ends in a number of n or more ("one-b12").
func atLeast(key string, n int) bool {
	var k int
	fmt.Sscanf(key[strings.LastIndexAny(key, "b")+1:], "%d", &k)
	return k >= n
}

func wantField(t *testing.T, line int, r overlapRow, errs []RowError, field string) {
	t.Helper()
	if len(errs) != 1 || errs[0].Field != field {
		t.Errorf("line %d (%s): refused %v; want one refusal of its %s", line, r.key, errs, field)
	}
}

// --skip-invalid with small batches: the imports commit batch by batch and interleave. Each
// shared row is written by one and present in the other; of every contradicting pair one row
// is written and the other refused on its field; OV-B takes exactly its 300 t.
func TestOverlappingImportsSkipInvalid(t *testing.T) {
	t.Parallel()
	s := overlapStore(t)
	one, two := overlappingFiles()
	rows := [][]overlapRow{one, two}
	outs := runOverlapping(t, s, []*File{writeRows(t, "one.csv", one), writeRows(t, "two.csv", two)}, Options{Batch: 4, SkipInvalid: true})
	for i, o := range outs {
		if o.err != nil {
			t.Errorf("import %d: %v (%+v)", i, o.err, o.sum)
		}
		if o.sum.Read != len(rows[i]) || o.sum.Written+o.sum.Present+o.sum.Refused != o.sum.Read {
			t.Errorf("import %d: %+v; want all %d rows read, each written, present or refused", i, o.sum, len(rows[i]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var written []overlapRow
	byKey := map[string][]bool{} // key -> refused in each file that has it
	for f, rs := range rows {
		for i, r := range rs {
			errs := outs[f].refused[i+2]
			if errs == nil && !slices.ContainsFunc(written, func(w overlapRow) bool { return w.key == r.key }) {
				written = append(written, r)
			}
			switch {
			case errs == nil:
			case r.why == "":
				t.Errorf("file %d line %d (%s): refused %v; nothing contradicts it", f+1, i+2, r.key, errs)
			default:
				wantField(t, i+2, r, errs, r.why)
			}
			byKey[r.key] = append(byKey[r.key], errs != nil)
		}
	}
	for k, refused := range byKey {
		if strings.HasPrefix(k, "clash-") && (len(refused) != 2 || refused[0] == refused[1]) {
			t.Errorf("key %s (another request in each file): refused %v; want exactly one refused", k, refused)
		}
	}
	for i := 1; i <= 5; i++ {
		a, b := byKey[fmt.Sprintf("one-s%d", i)], byKey[fmt.Sprintf("two-s%d", i)]
		if a[0] == b[0] {
			t.Errorf("serial pair %d: refused %v and %v; want exactly one refused", i, a[0], b[0])
		}
	}
	ovb := 0
	for _, r := range written {
		if r.contract == "OV-B" {
			ovb++
		}
	}
	if ovb != 30 {
		t.Errorf("%d deliveries of 10 t into OV-B's 300 t written, want 30", ovb)
	}
	if got := outs[0].sum.Written + outs[1].sum.Written; got != len(written) {
		t.Errorf("the imports say they wrote %d rows; %d distinct rows were not refused", got, len(written))
	}
	checkRecount(t, s, written)
}

// An import locks the contracts of a batch before it parses its rows: a contract or an entry
// that is not a code or an id (a NUL byte, bytes that are not UTF-8, which PostgreSQL refuses
// to compare) is left for its row to refuse, and the rest of the file is written.
func TestImportLocksOnlyWhatCanBeNamed(t *testing.T) {
	t.Parallel()
	s := overlapStore(t)
	var b strings.Builder
	b.WriteString("op,contract,tonnes,date,entry,reason\n")
	b.WriteString("deliver,OV\x00A,1,2025-03-01,,\n")
	b.WriteString("deliver,OV-A\xff,1,2025-03-01,,\n")
	b.WriteString("revert,,,,not-an-id\xff,mistake\n")
	b.WriteString("deliver,OV-A,1,2025-03-01,,\n")
	p := filepath.Join(t.TempDir(), "names.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var refused []int
	sum, err := Import(context.Background(), s, []*File{PathFile(p)}, Options{SkipInvalid: true,
		OnError: func(e RowError) { refused = append(refused, e.Line) }})
	if err != nil || sum.Written != 1 || sum.Refused != 3 {
		t.Fatalf("import: %+v, %v (refused lines %v); want the last row written and the three others refused", sum, err, refused)
	}
}
