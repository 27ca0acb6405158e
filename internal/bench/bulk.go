package bench

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// BulkConfig sizes the bulk section: `carbonledger import` of a large file of deliveries,
// beside plain COPY of as many journal rows into bare tables on the same server.
type BulkConfig struct {
	Rows      int // deliveries of 1 t in the file
	Contracts int // contracts they are spread over, round-robin
}

var (
	bulkDBName = "carbonledger_bench_bulk"
	copyDBName = "carbonledger_bench_copy"
	// one bulk section per server at a time, since each drops and recreates the same two
	// databases (a key of its own: the write section's databases are others)
	bulkLockKey = int64(0x636c62756c6b) // "clbulk"
)

// The targets.
const (
	targetBulkVsCopy = 0.5         // first import's deliveries/s / COPY's entries/s
	targetBulkRate   = 30_000      // deliveries/s of the first import
	targetBulkRSS    = 150_000_000 // bytes (150 MB) of the importer's peak resident memory
	// entries per transaction of the COPY ceiling: a failed or interrupted load loses one
	// batch, as a real loader would commit, and no transaction holds millions of rows
	copyBatch = 100_000
)

// importRun is one `carbonledger import` process.
type importRun struct {
	elapsed time.Duration // wall time of the process: start, connect, read, write, exit
	maxRSS  int64         // peak resident memory, bytes
}

// Bulk runs the bulk section against the server of admin. It builds the carbonledger binary,
// makes its two databases afresh and drops them when done.
func Bulk(ctx context.Context, admin string, cfg Config, today time.Time) error {
	bc := cfg.Bulk
	if bc.Rows <= 0 {
		bc.Rows = 1_000_000
	}
	if bc.Contracts <= 0 {
		bc.Contracts = 1000
	}
	adminDB, release, err := ownSection(ctx, admin, "bulk", bulkLockKey, []string{bulkDBName, copyDBName}, cfg.Log)
	if err != nil {
		return err
	}
	defer release()
	dir, err := os.MkdirTemp("", "clbench-bulk-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin, err := buildCarbonledger(ctx, dir, cfg.Log)
	if err != nil {
		return err
	}
	bulkURL, err := freshDB(ctx, adminDB, admin, bulkDBName)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "bulk: migrating %s\n", bulkDBName)
	if _, err := store.Migrate(ctx, bulkURL); err != nil {
		return err
	}
	journal, err := sql.Open("postgres", bulkURL)
	if err != nil {
		return err
	}
	defer journal.Close()
	count := func(q string) (int64, error) {
		var n int64
		err := journal.QueryRowContext(ctx, q).Scan(&n)
		return n, err
	}

	fmt.Fprintf(cfg.Log, "bulk: writing %d contracts and %d deliveries to %s\n", bc.Contracts, bc.Rows, dir)
	start := time.Now()
	contractsFile, deliveriesFile, err := writeBulkFiles(dir, bc, today)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "bulk: files written in %s\n", time.Since(start).Round(time.Millisecond))
	contractsSize, deliveriesSize := fileSize(contractsFile), fileSize(deliveriesFile)

	fmt.Fprintf(cfg.Log, "bulk: carbonledger import --quiet %s\n", filepath.Base(contractsFile))
	contracts, err := runImport(ctx, bin, bulkURL, contractsFile, cfg.Log)
	if err != nil {
		return err
	}
	nContracts, err := count(`SELECT count(*) FROM contracts`)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "bulk: carbonledger import --quiet %s (first)\n", filepath.Base(deliveriesFile))
	first, err := runImport(ctx, bin, bulkURL, deliveriesFile, cfg.Log)
	if err != nil {
		return err
	}
	const deliveries = `SELECT count(*) FROM entries WHERE kind = 'deliver'`
	afterFirst, err := count(deliveries)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "bulk: carbonledger import --quiet %s (again, everything already present)\n", filepath.Base(deliveriesFile))
	again, err := runImport(ctx, bin, bulkURL, deliveriesFile, cfg.Log)
	if err != nil {
		return err
	}
	afterAgain, err := count(deliveries)
	if err != nil {
		return err
	}

	copyURL, err := freshDB(ctx, adminDB, admin, copyDBName)
	if err != nil {
		return err
	}
	c := writeContract(bulkCode(1), today)
	perBook := len(c.Accounts().List(&c)) // as many accounts per book as a contract has
	fmt.Fprintf(cfg.Log, "bulk: COPY of %d entries and %d postings into bare tables (%s)\n", bc.Rows, 2*bc.Rows, copyDBName)
	ceiling, err := copyCeiling(ctx, copyURL, bc, perBook, today, cfg.Log)
	if err != nil {
		return err
	}

	// What durability both sides ran with, from connections opened now.
	version, _ := showSetting(ctx, admin, "server_version")
	fsync, _ := showSetting(ctx, admin, "fsync")
	bulkSync, err := showSetting(ctx, bulkURL, "synchronous_commit")
	if err != nil {
		return err
	}
	copySync, err := showSetting(ctx, copyURL, "synchronous_commit")
	if err != nil {
		return err
	}

	// The report.
	out := cfg.Out
	rate := func(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
	ours, copyRate := rate(bc.Rows, first.elapsed), rate(bc.Rows, ceiling)
	fmt.Fprintf(out, "\nbulk: carbonledger import --quiet (one process, wall time from start to exit) of %d deliveries of 1 t over %d contracts,\n", bc.Rows, bc.Contracts)
	fmt.Fprintf(out, "a CSV with empty keys, into a fresh migrated database; beside plain COPY (lib/pq CopyIn) of as many entries and twice as\n")
	fmt.Fprintf(out, "many postings into bare tables shaped like the journal (keys and foreign keys, no triggers, rollups, chain nor unique\n")
	fmt.Fprintf(out, "(book, seq) / idempotency key), one transaction per %d entries, values generated while copying and timed with it\n", copyBatch)
	fmt.Fprintf(out, "server: PostgreSQL %s; synchronous_commit: import database %s, COPY database %s; fsync %s\n", version, bulkSync, copySync, fsync)
	fmt.Fprintf(out, "files: %s %s, %s %s\n\n", filepath.Base(contractsFile), megabytes(contractsSize), filepath.Base(deliveriesFile), megabytes(deliveriesSize))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\trows\tseconds\trows/s\tpeak RSS MB\tin the database after\t/ COPY rows/s\t\n")
	fmt.Fprintf(tw, "import %s\t%d\t%.2f\t%.0f\t%.0f\t%d contracts\t-\t\n", filepath.Base(contractsFile), bc.Contracts,
		contracts.elapsed.Seconds(), rate(bc.Contracts, contracts.elapsed), float64(contracts.maxRSS)/1e6, nContracts)
	fmt.Fprintf(tw, "import %s\t%d\t%.2f\t%.0f\t%.0f\t%d deliveries\t%.2f\t\n", filepath.Base(deliveriesFile), bc.Rows,
		first.elapsed.Seconds(), ours, float64(first.maxRSS)/1e6, afterFirst, ours/copyRate)
	fmt.Fprintf(tw, "import %s again\t%d\t%.2f\t%.0f\t%.0f\t%d deliveries\t-\t\n", filepath.Base(deliveriesFile), bc.Rows,
		again.elapsed.Seconds(), rate(bc.Rows, again.elapsed), float64(again.maxRSS)/1e6, afterAgain)
	fmt.Fprintf(tw, "COPY entries + postings (ceiling)\t%d\t%.2f\t%.0f\t-\t%d entries, %d postings\t1.00\t\n", bc.Rows,
		ceiling.Seconds(), copyRate, bc.Rows, 2*bc.Rows)
	tw.Flush()
	// The journal's own counts say whether the figures measured the work they claim to.
	if afterFirst != int64(bc.Rows) {
		fmt.Fprintf(out, "  the first import left %d deliveries in the journal, not %d: its figure is not of the whole file\n", afterFirst, bc.Rows)
	}
	if afterAgain != afterFirst {
		fmt.Fprintf(out, "  the re-import changed the deliveries in the journal from %d to %d: it was not a re-import of what was present\n", afterFirst, afterAgain)
	}

	// The targets, with the figures they were judged on; never an exit code.
	fmt.Fprintf(out, "\ntargets (figures, not pass/fail of the command):\n")
	fmt.Fprintf(out, "  import >= %.1f x COPY: %.0f / %.0f = %.2f  %s\n", targetBulkVsCopy, ours, copyRate, ours/copyRate, met(ours/copyRate >= targetBulkVsCopy))
	fmt.Fprintf(out, "  import >= %d deliveries/s: %.0f  %s\n", targetBulkRate, ours, met(ours >= targetBulkRate))
	fmt.Fprintf(out, "  import peak RSS < %d MB: %.0f MB  %s\n", targetBulkRSS/1_000_000, float64(first.maxRSS)/1e6, met(first.maxRSS < targetBulkRSS))
	rr := ratioOf(again.elapsed, first.elapsed)
	fmt.Fprintf(out, "  re-import time <= first import time: %.2f s / %.2f s = %.2f  %s\n", again.elapsed.Seconds(), first.elapsed.Seconds(), rr, met(rr <= 1))
	return nil
}

// buildCarbonledger builds the command from the module the benchmark runs in, so that what is
// measured is the importer of this working tree, and returns the binary's path.
func buildCarbonledger(ctx context.Context, dir string, log io.Writer) (string, error) {
	root, err := pgdev.ProjectRoot()
	if err != nil {
		return "", err
	}
	if !fileExists(filepath.Join(root, "cmd", "carbonledger")) {
		return "", fmt.Errorf("bulk: no cmd/carbonledger under %s: run clbench from the carbonledger module", root)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("bulk: the go command builds carbonledger and is not on PATH: %w", err)
	}
	bin := filepath.Join(dir, "carbonledger")
	fmt.Fprintf(log, "bulk: go build -o %s ./cmd/carbonledger\n", bin)
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/carbonledger")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bulk: go build ./cmd/carbonledger: %v\n%s", err, out)
	}
	return bin, nil
}

// runImport runs `carbonledger import --quiet file` against dbURL and measures it.
func runImport(ctx context.Context, bin, dbURL, file string, log io.Writer) (importRun, error) {
	cmd := exec.CommandContext(ctx, bin, "import", "--quiet", file)
	// The URL goes in the environment, not on the command line where ps shows its password;
	// set, it also keeps the importer off the private cluster. The last of duplicate keys wins.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return importRun{}, err
	}
	// The peak is read from the process itself while it runs: the rusage of a child started
	// by fork and exec also counts the parent's memory at the fork (the benchmark's, tens of
	// MB), so it overstates a small import. VmHWM only grows, so the last reading is the peak
	// but for what the last few milliseconds add.
	hwm := make(chan int64, 1)
	done := make(chan struct{})
	go func() {
		var peak int64
		for {
			if kb := vmHWM(cmd.Process.Pid); kb > peak {
				peak = kb
			}
			select {
			case <-done:
				hwm <- peak
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	r := importRun{elapsed: time.Since(start), maxRSS: <-hwm * 1024}
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		return r, fmt.Errorf("bulk: carbonledger import --quiet %s: %v\nstderr:\n%s\nstdout:\n%s", filepath.Base(file), err, stderr.String(), stdout.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && r.maxRSS == 0 {
		r.maxRSS = int64(ru.Maxrss) * 1024 // KiB on Linux; an upper bound (above)
	}
	fmt.Fprintf(log, "bulk: done in %.2f s, peak RSS %.0f MB\n", r.elapsed.Seconds(), float64(r.maxRSS)/1e6)
	// --quiet leaves only what the importer thinks worth saying anyway (warnings)
	if s := strings.TrimSpace(stderr.String()); s != "" {
		fmt.Fprintf(log, "bulk: carbonledger import said:\n%s\n", s)
	}
	return r, nil
}

// vmHWM is the peak resident memory of process pid so far, in KiB (0 when it cannot be read).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func bulkCode(i int) string { return fmt.Sprintf("BULK-%04d", i) }

// writeBulkFiles writes the contracts (NDJSON, one json.Marshal(ledger.Contract) a line) and
// the deliveries (CSV) the section imports, and returns their paths.
func writeBulkFiles(dir string, bc BulkConfig, today time.Time) (contractsFile, deliveriesFile string, err error) {
	contractsFile = filepath.Join(dir, "contracts.ndjson")
	err = writeFile(contractsFile, func(w *bufio.Writer) error {
		for i := 1; i <= bc.Contracts; i++ {
			b, err := json.Marshal(writeContract(bulkCode(i), today))
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	deliveriesFile = filepath.Join(dir, "deliveries.csv")
	days := bulkDays(today)
	start := writeContract(bulkCode(1), today).TermStart
	err = writeFile(deliveriesFile, func(w *bufio.Writer) error {
		w.WriteString("op,contract,tonnes,date,key\n")
		var line []byte
		for i := 0; i < bc.Rows; i++ {
			line = append(line[:0], "deliver,"...)
			line = append(line, bulkCode(i%bc.Contracts+1)...)
			line = append(line, ",1,"...)
			line = start.AddDate(0, 0, bulkDay(i, bc.Rows, days)).AppendFormat(line, time.DateOnly)
			line = append(line, ",\n"...) // an empty key: the importer derives one from the file and line
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return contractsFile, deliveriesFile, nil
}

// bulkDays is how many days the deliveries are spread over: the term start (two years ago)
// to yesterday, so that none is in the future whatever the importer's clock says today is.
func bulkDays(today time.Time) int {
	return int(today.Sub(writeContract(bulkCode(1), today).TermStart).Hours() / 24)
}

// bulkDay is the day after the term start of row i of n: the days go forward through the
// file, so each contract's deliveries (every Contracts-th row) are in date order too.
func bulkDay(i, n, days int) int { return int(int64(i) * int64(days) / int64(n)) }

func writeFile(name string, fill func(*bufio.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileSize(name string) int64 {
	st, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return st.Size()
}

// megabytes is a file size in the decimal units the memory target is in.
func megabytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// The ceiling's tables: the journal's shape and its keys, nothing of what makes it a ledger.
var ceilingSchema = []string{
	`CREATE TABLE books (id bigint PRIMARY KEY, code text UNIQUE)`,
	`CREATE TABLE accounts (id bigint PRIMARY KEY, book_id bigint REFERENCES books, code text UNIQUE)`,
	`CREATE TABLE entries (id uuid PRIMARY KEY, book_id bigint NOT NULL REFERENCES books, seq bigint NOT NULL,
		kind text NOT NULL, effective_on date NOT NULL, recorded_at timestamptz NOT NULL, idempotency_key text NOT NULL,
		request_sha256 bytea NOT NULL, description text NOT NULL, metadata jsonb NOT NULL, prev_hash bytea NOT NULL,
		hash bytea NOT NULL)`,
	`CREATE TABLE postings (entry_id uuid REFERENCES entries, account_id bigint REFERENCES accounts,
		amount numeric NOT NULL, PRIMARY KEY (entry_id, account_id))`,
	`CREATE INDEX ON postings (account_id)`,
}

// copyCeiling creates the bare tables in dbURL, with one book per contract and perBook
// accounts each (not timed), then times COPY of bc.Rows delivery-like entries, two postings
// each between two accounts of the entry's book, one transaction per copyBatch entries. The
// values are generated while copying (ids, random hashes, text as the importer would write
// it), so their cost, small beside the server's, is in the time.
func copyCeiling(ctx context.Context, dbURL string, bc BulkConfig, perBook int, today time.Time, log io.Writer) (time.Duration, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range ceilingSchema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("bulk: ceiling schema: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO books SELECT b, 'BULK-' || lpad(b::text, 4, '0') FROM generate_series(1, $1) b`, bc.Contracts); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts SELECT (b - 1) * $2 + a, b, 'BULK-' || lpad(b::text, 4, '0') || ':' || a
		FROM generate_series(1, $1) b, generate_series(1, $2) a`, bc.Contracts, perBook); err != nil {
		return 0, err
	}

	termStart := writeContract(bulkCode(1), today).TermStart
	days := bulkDays(today)
	rng := rand.NewChaCha8([32]byte{'c', 'l', 'b', 'u', 'l', 'k'})
	random32 := func() []byte {
		b := make([]byte, 32)
		rng.Read(b)
		return b
	}
	prev := make([][]byte, bc.Contracts) // each book's last hash, so the chain columns chain
	for i := range prev {
		prev[i] = random32()
	}
	fileHash := random32()
	start := time.Now()
	ids := make([]string, 0, min(copyBatch, bc.Rows))
	for from := 0; from < bc.Rows; from += copyBatch {
		to := min(from+copyBatch, bc.Rows)
		ids = ids[:0]
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		err = copyRows(ctx, tx, pq.CopyIn("entries", "id", "book_id", "seq", "kind", "effective_on", "recorded_at", "idempotency_key",
			"request_sha256", "description", "metadata", "prev_hash", "hash"), func(stmt *sql.Stmt) error {
			for i := from; i < to; i++ {
				book := i % bc.Contracts
				day := bulkDay(i, bc.Rows, days)
				year := day/365 + 1 // near enough: the text's length is what matters
				id, hash := ledger.NewID(), random32()
				ids = append(ids, id)
				if _, err := stmt.ExecContext(ctx, id, book+1, i/bc.Contracts+2, "deliver", termStart.AddDate(0, 0, day), time.Now(),
					fmt.Sprintf("import:%x:%d", fileHash[:8], i+2), random32(),
					fmt.Sprintf("Delivery of 1.000 t under %s (contract year %d)", bulkCode(book+1), year),
					`{"contract_year":"`+strconv.Itoa(year)+`"}`, prev[book], hash); err != nil {
					return err
				}
				prev[book] = hash
			}
			return nil
		})
		if err == nil {
			err = copyRows(ctx, tx, pq.CopyIn("postings", "entry_id", "account_id", "amount"), func(stmt *sql.Stmt) error {
				for k, id := range ids {
					acct := int64((from+k)%bc.Contracts)*int64(perBook) + 1
					if _, err := stmt.ExecContext(ctx, id, acct, "1.000"); err != nil {
						return err
					}
					if _, err := stmt.ExecContext(ctx, id, acct+1, "-1.000"); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("bulk: COPY ceiling, entries %d..%d: %w", from, to-1, err)
		}
		fmt.Fprintf(log, "\rbulk: COPY %d/%d entries (%s)", to, bc.Rows, time.Since(start).Round(time.Second))
	}
	elapsed := time.Since(start)
	fmt.Fprintln(log)
	return elapsed, nil
}

// copyRows runs one COPY statement in tx, fill executing it once a row.
func copyRows(ctx context.Context, tx *sql.Tx, copySQL string, fill func(*sql.Stmt) error) error {
	stmt, err := tx.PrepareContext(ctx, copySQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	if err := fill(stmt); err != nil {
		return err
	}
	_, err = stmt.ExecContext(ctx) // flushes the COPY and reports what the server refused
	return err
}
