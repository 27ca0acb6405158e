package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the binary's help (TestCLIDoc)")

// cliDocPath is docs/cli.md, relative to this package's directory (where go test runs).
const cliDocPath = "../../docs/cli.md"

const cliDocStale = "docs/cli.md is out of date with the binary's help; run: go test ./cmd/carbonledger -run TestCLIDoc -update"

// subcommand is one subcommand of a command. The binary prints no summary for a subcommand,
// so the one-line summary is kept here; the names are checked against the list the parent
// command gives in its own usage error (listedBy), so a subcommand cannot be added or dropped
// without this table, and docs/cli.md, following.
type subcommand struct{ name, summary string }

var subcommands = map[string]struct {
	listedBy []string // arguments whose usage error names every subcommand; nil if none does
	subs     []subcommand
}{
	"contract": {[]string{"contract"}, []subcommand{
		{"add", "sign a contract, from a JSON file or from flags"},
		{"list", "list every contract with its position"},
		{"show", "show one contract's terms, position and schedule"},
	}},
	"report": {[]string{"report"}, []subcommand{
		{"term", "per contract and contract year: scheduled, delivered, shortfall, retired, ...; --contract for one contract"},
		{"period", "per calendar or fiscal year (--year or --years), optionally grouped --by a key"},
		{"portfolio", "every contract, the totals, the shares, and the inventory delivered but not yet retired"},
	}},
	// audit with no arguments runs the audit, so nothing lists keygen without a database.
	"audit": {nil, []subcommand{
		{"keygen", "write an Ed25519 key pair for signing audit statements"},
	}},
	"token": {[]string{"token"}, []subcommand{
		{"create", "create an API token and print it, once; only its hash is kept"},
		{"list", "list the tokens: name, role, contracts, when created and revoked"},
		{"revoke", "revoke a token from now on"},
	}},
	"db": {[]string{"db"}, []subcommand{
		{"start", "start the private cluster (initialising it on first use)"},
		{"stop", "stop the private cluster"},
		{"url", "print the private cluster's connection URL"},
		{"status", "print the private cluster's directory and the PostgreSQL binaries it uses"},
	}},
}

// docSection is one command or subcommand as its -h shows it.
type docSection struct {
	args    []string // after "carbonledger"; nil for the top level
	summary string
	help    string   // what -h prints, "" if the command has no help of its own
	flags   []string // flag names parsed from help
	subs    []subcommand
}

func (s docSection) title() string {
	return strings.Join(append([]string{"carbonledger"}, s.args...), " ")
}

func anchor(title string) string { return "#" + strings.ReplaceAll(title, " ", "-") }

// TestCLIDoc keeps docs/cli.md equal to the binary's help, and checks, independently of the
// exact text, that the document names every flag each command takes and names no flag a
// command does not take.
func TestCLIDoc(t *testing.T) {
	secs := cliSections(t)
	got := renderCLIDoc(secs)
	if *update {
		if err := os.MkdirAll(filepath.Dir(cliDocPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cliDocPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", cliDocPath)
	}
	b, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, cliDocStale)
	}
	if diff := cmp.Diff(string(b), got); diff != "" {
		t.Errorf("%s\n(-docs/cli.md +generated):\n%s", cliDocStale, diff)
	}
	checkDocFlags(t, string(b), secs)
}

// helpOf runs `carbonledger args... -h` and returns what it printed and its exit code. The
// context is cancelled and the private cluster's directory is t's own, so a command that went
// on to open a database would fail instead of reaching one; cliSections checks it did not.
func helpOf(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, append(slices.Clone(args), "-h"), &out, &errOut)
	return out.String() + errOut.String(), code
}

var flagLine = regexp.MustCompile(`(?m)^  -([^\s=]+)`)

func cliSections(t *testing.T) []docSection {
	t.Helper()
	// Defaults taken from the environment would make the document depend on who generated it.
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CARBONLEDGER_SIGNING_KEY", "")
	dataDir := t.TempDir()
	t.Setenv("CARBONLEDGER_DATA_DIR", filepath.Join(dataDir, "pg"))

	top, code := helpOf(t)
	if code != 0 || !strings.Contains(top, "Usage: carbonledger") {
		t.Fatalf("carbonledger -h: exit %d, want 0 and a usage text; printed:\n%s", code, top)
	}
	secs := []docSection{{help: top}}
	for _, c := range commands() {
		if !strings.Contains(top, "\n  "+c.name+" ") {
			t.Errorf("carbonledger -h does not list the command %q", c.name)
		}
		s := docSection{args: []string{c.name}, summary: c.summary}
		sub, hasSubs := subcommands[c.name]
		s.subs = sub.subs
		secs = append(secs, helpSection(t, s, hasSubs))
		if sub.listedBy != nil {
			checkListed(t, sub.listedBy, sub.subs)
		}
		for _, sc := range sub.subs {
			secs = append(secs, helpSection(t, docSection{args: []string{c.name, sc.name}, summary: sc.summary}, false))
		}
	}
	for name := range subcommands {
		if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == name }) {
			t.Errorf("subcommands lists %q, which is not a command", name)
		}
	}
	if ents, err := os.ReadDir(dataDir); err != nil || len(ents) > 0 {
		t.Errorf("rendering the help touched the private cluster's directory (%v, %d files): a -h went on to open a database", err, len(ents))
	}
	return secs
}

// helpSection fills s with what `carbonledger s.args... -h` prints. A command with
// subcommands may have no help of its own; any other command must print a usage text and exit
// 2, having opened no database.
func helpSection(t *testing.T, s docSection, parent bool) docSection {
	t.Helper()
	out, code := helpOf(t, s.args...)
	if usageNames(out, s.args) && code == 2 {
		s.help = out
		for _, m := range flagLine.FindAllStringSubmatch(out, -1) {
			s.flags = append(s.flags, m[1])
		}
		return s
	}
	// (db looks for PostgreSQL's binaries before it reads its subcommand, so `db -h` may exit 1
	// on a machine without them; it opens nothing, which the directory check confirms.)
	if strings.Contains(out, "context canceled") || code == 1 && !parent {
		t.Errorf("%s -h: exit %d, it went on to run the command:\n%s", s.title(), code, out)
	} else if !parent && (code != 2 || !strings.HasPrefix(s.title(), "carbonledger db ")) {
		// Only db's subcommands are known to have no help (-h is a usage error, exit 2);
		// anything else is a regression.
		t.Errorf("%s -h: exit %d, want 2 and \"Usage: %s ...\"; printed:\n%s", s.title(), code, s.title(), out)
	}
	return s
}

// usageNames reports whether help starts with a usage line for the command args, allowing
// alternatives ("Usage: carbonledger report term|period|portfolio ...").
func usageNames(help string, args []string) bool {
	line, _, _ := strings.Cut(help, "\n")
	rest, ok := strings.CutPrefix(line, "Usage: carbonledger ")
	words := strings.Fields(rest)
	if !ok || len(words) < len(args) {
		return false
	}
	for i, a := range args {
		if !slices.Contains(strings.Split(words[i], "|"), a) {
			return false
		}
	}
	return true
}

// checkListed checks that the usage error of `carbonledger args...` ("contract needs a
// subcommand: add, list or show") names exactly subs, in order.
func checkListed(t *testing.T, args []string, subs []subcommand) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := run(ctx, args, &out, &errOut); code != 2 {
		t.Errorf("carbonledger %s: exit %d, want 2 (a usage error naming the subcommands)", strings.Join(args, " "), code)
		return
	}
	msg := strings.TrimSpace(errOut.String())
	list := msg[strings.LastIndex(msg, ": ")+2:]
	got := strings.Split(strings.ReplaceAll(list, " or ", ", "), ", ")
	var want []string
	for _, s := range subs {
		want = append(want, s.name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("carbonledger %s names the subcommands %q, the doc's table has %q: update subcommands in clidoc_test.go\n(it said: %s)",
			strings.Join(args, " "), got, want, msg)
	}
}

func renderCLIDoc(secs []docSection) string {
	var b strings.Builder
	b.WriteString("# carbonledger command reference\n\n")
	b.WriteString("<!-- Generated by `go test ./cmd/carbonledger -run TestCLIDoc -update` from the binary's own -h output; do not edit. -->\n\n")
	b.WriteString(`Every command, subcommand and flag of ` + "`carbonledger`" + `, as its own help prints it: each
section below is the output of ` + "`carbonledger COMMAND [SUBCOMMAND] -h`" + `, so this page and the
binary cannot disagree (a test fails when they do). Flags are Go flags: ` + "`-name`" + ` and ` + "`--name`" + `
are the same, a value follows as ` + "`--name VALUE`" + ` or ` + "`--name=VALUE`" + `, and flags may come
before, between or after the positional arguments. A flag's default, when it has one, is shown
after its description.

Every command that touches the database takes ` + "`--db URL`" + `; without it the URL is
` + "`$DATABASE_URL`" + `, and without that a private PostgreSQL cluster under ` + "`.data/`" + ` in the
project, started on demand (see ` + "`carbonledger db`" + `). Data goes to stdout, progress and
diagnostics to stderr. Exit codes: 0 success, 1 failure (bad input, a refused operation, audit
findings, reconciliation discrepancies), 2 usage error. ` + "`carbonledger -h`" + ` prints the overview
to stdout and exits 0; ` + "`carbonledger COMMAND -h`" + ` prints the command's help to stderr and
exits 2. ` + "`carbonledger version`" + ` prints the version.

`)
	for _, s := range secs[1:] {
		indent := ""
		if len(s.args) > 1 {
			indent = "  "
		}
		fmt.Fprintf(&b, "%s- [%s](%s)\n", indent, strings.Join(s.args, " "), anchor(s.title()))
	}
	for _, s := range secs {
		fmt.Fprintf(&b, "\n## %s\n\n", s.title())
		if s.summary != "" {
			b.WriteString(upperFirst(s.summary) + ".\n\n")
		}
		if len(s.subs) > 0 {
			var links []string
			for _, sc := range s.subs {
				t := s.title() + " " + sc.name
				links = append(links, fmt.Sprintf("[`%s`](%s)", sc.name, anchor(t)))
			}
			fmt.Fprintf(&b, "Subcommands: %s.\n\n", strings.Join(links, ", "))
		}
		switch {
		case s.help != "":
			b.WriteString("```text\n" + strings.TrimRight(s.help, "\n") + "\n```\n")
		case len(s.subs) > 0:
			fmt.Fprintf(&b, "`%s` itself has no help and no flags; see its subcommands.\n", s.title())
		default:
			fmt.Fprintf(&b, "`%s` takes no flags and has no help of its own (`-h` is a usage error).\n", s.title())
		}
	}
	return b.String()
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// flagToken is a flag as prose and usage lines write it: -name or --name after a space,
// bracket, parenthesis, bar, comma, quote or backquote.
var flagToken = regexp.MustCompile("(?:^|[\\s\\[(|,'\"`])--?([a-zA-Z][a-zA-Z0-9-]*)")

// checkDocFlags reads the document as a reader would, section by section, without relying on
// its exact text: every flag a command takes appears in its section, and every flag its
// section names is one the command takes, which the binary itself is asked.
func checkDocFlags(t *testing.T, doc string, secs []docSection) {
	t.Helper()
	byTitle := map[string]docSection{}
	for _, s := range secs {
		byTitle[s.title()] = s
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(doc, "\n## ")[1:] {
		title, body, _ := strings.Cut(part, "\n")
		s, ok := byTitle[title]
		if !ok {
			t.Errorf("docs/cli.md has a section %q, which is no command of the binary", title)
			continue
		}
		seen[title] = true
		names := map[string]bool{}
		for _, m := range flagToken.FindAllStringSubmatch(body, -1) {
			names[m[1]] = true
		}
		for _, f := range s.flags {
			if !names[f] {
				t.Errorf("docs/cli.md, %s: the flag --%s is not mentioned (as -%s or --%s)", title, f, f, f)
			}
		}
		if s.args == nil {
			// The overview: a command's line names that command's flags; other lines name
			// flags that some command takes.
			for _, line := range strings.Split(body, "\n") {
				var owner []string
				for _, c := range commands() {
					if strings.HasPrefix(line, "  "+c.name+" ") {
						owner = []string{c.name}
					}
				}
				for _, m := range flagToken.FindAllStringSubmatch(line, -1) {
					if owner != nil {
						checkAccepted(t, title, owner, m[1])
					} else if !slices.ContainsFunc(commands(), func(c command) bool { return accepts([]string{c.name}, m[1]) }) {
						t.Errorf("docs/cli.md, %s: --%s (in %q) is taken by no command", title, m[1], strings.TrimSpace(line))
					}
				}
			}
			continue
		}
		for name := range names {
			checkAccepted(t, title, s.args, name)
		}
	}
	for _, s := range secs {
		if !seen[s.title()] {
			t.Errorf("docs/cli.md has no section %q", s.title())
		}
	}
}

func checkAccepted(t *testing.T, title string, args []string, name string) {
	t.Helper()
	if !accepts(args, name) {
		t.Errorf("docs/cli.md, %s: names --%s, which `carbonledger %s` does not accept", title, name, strings.Join(args, " "))
	}
}

// accepts asks the binary whether `carbonledger args...` takes the flag: it parses
// --name=1 -h and either stops at -h or complains about the value, never about the name.
func accepts(args []string, name string) bool {
	if name == "h" || name == "help" {
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, append(slices.Clone(args), "--"+name+"=1", "-h"), &out, &errOut)
	return code == 2 && strings.HasPrefix(errOut.String(), "Usage: ") ||
		code == 2 && strings.Contains(errOut.String(), "invalid value") && !strings.Contains(errOut.String(), "provided but not defined")
}
