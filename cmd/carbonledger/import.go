package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/carbonledger/carbonledger/internal/bulk"
	"github.com/carbonledger/carbonledger/reports"
)

// stdin is what `import -` reads (a test gives its own).
var stdin io.Reader = os.Stdin

func cmdImport(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("import", "import [--kind contracts|operations] [--skip-invalid [--rejects FILE]] [--quiet] [--format table|json] FILE... (- for stdin)")
	kind := fs.String("kind", "", "contracts or operations (default: told from each file's header, or each NDJSON line)")
	skip := fs.Bool("skip-invalid", false, "write the good rows and the bad ones, with their reasons, to a reject file (default: any bad row and nothing is written)")
	rejects := fs.String("rejects", "", "the reject file of --skip-invalid (default: FILE.rejects.csv or .ndjson beside each input)")
	quiet := fs.Bool("quiet", false, "no progress and no summary on stderr")
	batch := fs.Int("batch", 10000, "rows checked and written together (memory grows with it)")
	fs.IntVar(&a.futureDays, "future-days", 1, "how many days past today an effective date may lie")
	format := formatFlag(fs, "table", "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("import needs at least one FILE (- reads stdin)")
	}
	if *kind != "" && *kind != bulk.KindContracts && *kind != bulk.KindOperations {
		return usagef("--kind %q: want contracts or operations", *kind)
	}
	if *rejects != "" && !*skip {
		return usagef("--rejects goes with --skip-invalid (without it, a bad row means nothing is written)")
	}
	if *rejects != "" && len(pos) > 1 {
		return usagef("--rejects names one file; with several inputs each gets FILE.rejects.csv beside it")
	}
	if *batch < 1 {
		return usagef("--batch %d: want at least 1", *batch)
	}
	var files []*bulk.File
	for _, p := range pos {
		if p != "-" {
			if _, err := os.Stat(p); err != nil {
				return err
			}
			files = append(files, bulk.PathFile(p))
			continue
		}
		f, cleanup, err := bulk.SpoolFile("stdin", stdin)
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		defer cleanup()
		files = append(files, f)
	}

	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	// An import's live heap is a batch of rows and their entries, and it stays that size
	// however long the file: collect at the default pace, not the reports' relaxed one, so
	// the resident memory stays near it (GOGC in the environment still wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(100)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(100 << 20) // a soft limit: the collector works harder near it
	}

	opt := bulk.Options{Kind: *kind, SkipInvalid: *skip, Batch: *batch}
	if *skip {
		opt.Rejects = bulk.RejectsTo(func(f *bulk.File) string {
			if *rejects != "" {
				return *rejects
			}
			name := f.Name
			if name == "stdin" {
				name = "import"
			}
			ext := ".csv"
			if f.Format == "ndjson" {
				ext = ".ndjson"
			}
			return strings.TrimSuffix(name, ext) + ".rejects" + ext
		})
	}
	var rowErrs []bulk.RowError
	opt.OnError = func(e bulk.RowError) {
		if *format == "json" {
			rowErrs = append(rowErrs, e)
			return
		}
		fmt.Fprintln(a.stderr, reports.Inert(e.Error()))
	}
	prog := newProgress(a.stderr, *quiet)
	opt.OnProgress = prog.update
	sum, err := bulk.Import(ctx, s, files, opt)
	prog.done()
	if err != nil && !errors.Is(err, bulk.ErrRefused) {
		if !*quiet && sum.Read > 0 {
			fmt.Fprintf(a.stderr, "import stopped after %d rows; nothing of this run was written%s\n", sum.Read, committedNote(*skip))
		}
		return err
	}
	if *format == "json" {
		if rowErrs == nil {
			rowErrs = []bulk.RowError{}
		}
		if werr := writeJSON(a.stdout, map[string]any{"summary": summaryJSON(sum), "errors": rowErrs}); werr != nil {
			return werr
		}
	}
	if !*quiet {
		fmt.Fprintln(a.stderr, summaryLine(sum))
	}
	if err != nil {
		if *format != "json" {
			fmt.Fprintf(a.stderr, "carbonledger: %d bad row(s); nothing was written (fix them, or --skip-invalid to write the rest)\n", sum.Refused)
		}
		return &exitError{code: 1}
	}
	if sum.Refused > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func committedNote(skip bool) string {
	if skip {
		return " after its last completed batch; run it again to resume"
	}
	return "; run it again once the cause is fixed"
}

func summaryJSON(s bulk.Summary) map[string]any {
	return map[string]any{"read": s.Read, "written": s.Written, "valid_not_written": s.Valid, "already_present": s.Present, "refused": s.Refused,
		"committed": s.Committed, "seconds": fmt.Sprintf("%.3f", s.Elapsed.Seconds())}
}

func summaryLine(s bulk.Summary) string {
	written := fmt.Sprintf("%d written", s.Written)
	if !s.Committed {
		written = fmt.Sprintf("0 written (%d valid)", s.Valid)
	}
	return fmt.Sprintf("import: %d rows read, %s, %d already present, %d refused in %s (%s rows/s)",
		s.Read, written, s.Present, s.Refused, s.Elapsed.Round(time.Millisecond), rate(s.Read, s.Elapsed))
}

func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

// progress shows an import's progress on stderr: a line redrawn in place on a terminal, a
// plain line every few seconds otherwise, nothing with --quiet: rows so far and their
// outcome, rows/s, how much of the input is read, and the time left at that pace.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	off   bool
	tty   bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, off: quiet, last: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(s bulk.Summary) {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	line := fmt.Sprintf("import: %d rows (%d written, %d present, %d refused), %s rows/s, %s",
		s.Read, s.Written, s.Present, s.Refused, rate(s.Read, s.Elapsed), s.Elapsed.Round(time.Second))
	if s.Size > 0 && s.Bytes > 0 {
		left := time.Duration(float64(s.Elapsed) * float64(s.Size-s.Bytes) / float64(s.Bytes))
		line += fmt.Sprintf(", %d%%, ETA %s", s.Bytes*100/s.Size, left.Round(time.Second))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
