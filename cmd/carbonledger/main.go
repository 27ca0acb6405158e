// Command carbonledger is a double-entry ledger for carbon dioxide removal offtake contracts:
// it records contracts and everything that happens under them, produces term and period
// reports, and audits its totals.
//
// Data goes to stdout, progress and diagnostics to stderr. Exit codes: 0 success, 1 failure
// (or audit findings), 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/signal"
	"os/user"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/reports"
)

func main() {
	// A command runs for seconds with a small live heap, which the default GOGC=100 collects
	// over and over (a fifth of a report's CPU time, measured); trading a few MiB of memory for
	// that time is right here. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app carries what every command needs; flags are parsed in the command functions only.
type app struct {
	stdout, stderr io.Writer
	dbURL          string // --db, else DATABASE_URL, else the private cluster
	futureDays     int
	now            func() time.Time
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"contract", "add, list or show offtake contracts", cmdContract},
		{"deliver", "record a delivery of credits under a contract", cmdDeliver},
		{"retire", "retire held credits on behalf of a beneficiary", cmdRetire},
		{"cancel", "cancel open tonnes the supplier will not deliver (--terminate: all of them)", cmdCancel},
		{"reverse", "record a carbon reversal of delivered tonnes, with its remedy", cmdReverse},
		{"amend", "change a contract's tonnes or schedule", cmdAmend},
		{"revert", "correct a mistaken entry with a reverting entry", cmdRevert},
		{"import", "record contracts and operations from CSV or NDJSON files, all or nothing", cmdImport},
		{"report", "term, period or portfolio report (table, csv, json, html)", cmdReport},
		{"reconcile", "match a registry's export (CAR, Verra, Gold Standard, Isometric, Puro) against the ledger (exit 1 on discrepancies)", cmdReconcile},
		{"export", "write the journal for hledger or beancount, or as CSV (operations for import, or postings)", cmdExport},
		{"audit", "recompute every total from the postings and verify the hash chains (exit 1 on findings)", cmdAudit},
		{"journal", "list a contract's journal entries", cmdJournal},
		{"serials", "list the serial blocks delivered under contracts", cmdSerials},
		{"serve", "serve the JSON API under /v1 (tokens from `carbonledger token`)", cmdServe},
		{"token", "create, list or revoke the API's tokens", cmdToken},
		{"demo", "load the seed contracts with an illustrative history and print their positions", cmdDemo},
		{"migrate", "apply pending database migrations", cmdMigrate},
		{"db", "manage the private PostgreSQL cluster (start, stop, url, status)", cmdDB},
	}
}

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, now: time.Now, futureDays: 1}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "carbonledger", version())
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, a, args[1:])
			return report(stderr, err)
		}
	}
	fmt.Fprintf(stderr, "carbonledger: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

// report prints err for a user and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "carbonledger: %s\n", reports.InertLines(err.Error()))
		}
		return 2
	}
	var ex *exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	// An error may quote stored or given text: its control characters are shown, not obeyed.
	fmt.Fprintf(stderr, "carbonledger: %s\n", reports.InertLines(err.Error()))
	return 1
}

// exitError ends a command with a code after it has printed what it needed to.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "carbonledger: a double-entry ledger for carbon dioxide removal offtake contracts")
	fmt.Fprintln(w, "\nUsage: carbonledger COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, `
Every command that touches the database takes --db URL (default: $DATABASE_URL, else a private
PostgreSQL cluster under .data/ started on demand). Run 'carbonledger COMMAND -h' for its flags.
Exit codes: 0 success, 1 failure or audit findings, 2 usage error.`)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// subcommandHelp prints a command's usage line (and where its subcommands' flags are) as -h
// does for a command with flags, and exits the same way.
func (a *app) subcommandHelp(usage, more string) error {
	fmt.Fprintf(a.stderr, "Usage: carbonledger %s\n", usage)
	if more != "" {
		fmt.Fprintf(a.stderr, "Run 'carbonledger %s' for a subcommand's flags.\n", more)
	}
	return flag.ErrHelp
}

// newFlags returns a flag set that reports errors instead of exiting, with the common flags.
func (a *app) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	// The default is read after parsing, not shown: help text must never print a password.
	fs.StringVar(&a.dbURL, "db", "", "PostgreSQL `URL` (default $DATABASE_URL, else the private cluster)")
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: carbonledger %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after positional arguments
// ("contract show CODE --format json") and returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open opens the store: --db, DATABASE_URL, or the private cluster's "carbonledger" database.
func (a *app) open(ctx context.Context) (*store.Store, error) {
	url, private, err := a.resolve(ctx)
	if err != nil {
		return nil, err
	}
	if private {
		// The private cluster is the binary's own: it follows the binary's schema. A server
		// named by --db or DATABASE_URL is migrated only by 'carbonledger migrate'.
		if _, err := store.Migrate(ctx, url); err != nil {
			return nil, err
		}
	}
	s, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	s.FutureTolerance = time.Duration(a.futureDays) * 24 * time.Hour
	s.Now = a.now
	s.Recorder = "user:" + osUser()
	return s, nil
}

// resolve returns the database URL: --db, else DATABASE_URL, else the private cluster's
// "carbonledger" database, saying so once on stderr so that nobody writes into it believing
// they wrote to their server.
func (a *app) resolve(ctx context.Context) (url string, private bool, err error) {
	if a.dbURL != "" {
		return a.dbURL, false, nil
	}
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, false, nil
	}
	c, err := pgdev.Default(a.stderr)
	if err != nil {
		return "", false, err
	}
	if url, err = c.URL(ctx, "carbonledger"); err != nil {
		return "", false, err
	}
	fmt.Fprintf(a.stderr, "carbonledger: using the private PostgreSQL cluster in %s on %s (set DATABASE_URL or --db to use your own server)\n",
		c.Dir, hostPort(url))
	return url, true, nil
}

func hostPort(raw string) string {
	if u, err := neturl.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}

func version() string { return "0.1.0" }

// formatFlag registers --format with the allowed values.
func formatFlag(fs *flag.FlagSet, def string, allowed ...string) *string {
	return fs.String("format", def, "output format: "+strings.Join(allowed, "|"))
}

func checkFormat(f string, allowed ...string) error {
	for _, x := range allowed {
		if f == x {
			return nil
		}
	}
	return usagef("--format %q is not one of %s", f, strings.Join(allowed, ", "))
}

// osUser is who runs the command, as each entry it writes records it.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
