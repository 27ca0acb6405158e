package ledger

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDomainIsPure fails when the ledger package comes to depend, directly or not, on a
// database or HTTP package: the domain builds and checks entries; adapters do the I/O.
func TestDomainIsPure(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the package's dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/carbonledger/carbonledger/ledger").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/shopspring/decimal") || deps[len(deps)-1] != "github.com/carbonledger/carbonledger/ledger" {
		t.Fatalf("go list -deps: got %q, want the package's dependency list ending with the package", deps)
	}
	forbidden := []string{"database/sql", "net/http", "github.com/lib/pq", "github.com/jmoiron/sqlx"}
	for _, d := range deps {
		// database/sql/driver holds only the Valuer and Scanner interfaces, and comes in with
		// github.com/shopspring/decimal (which implements them); it opens no database.
		if d == "database/sql/driver" {
			continue
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("ledger depends on %s; the domain imports no database or HTTP package", d)
			}
		}
	}
}
