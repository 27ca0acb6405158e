// Package pgdev runs the private PostgreSQL cluster a user gets when DATABASE_URL is not
// set: initdb and pg_ctl from the machine's PostgreSQL 15+ install, a data directory of the
// project's own, a free loopback port, a generated password, and reuse on the next run.
//
// When invoked as root the cluster runs as the "postgres" user (PostgreSQL refuses to run as
// root). That user must be able to reach the data directory; a checkout under /root is not
// reachable, so the cluster then lives under /var/tmp/carbonledger-<hash of the project path>,
// and the path is printed.
package pgdev

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the driver the store uses
)

// InstallHint is shown when no PostgreSQL server binaries can be found.
const InstallHint = `PostgreSQL 15 or newer is needed and its server binaries (initdb, pg_ctl) were not found on PATH,
via pg_config, or under /usr/lib/postgresql/*/bin. Install them:
  Debian/Ubuntu:  sudo apt-get install -y postgresql
  Fedora/RHEL:    sudo dnf install -y postgresql-server
  macOS:          brew install postgresql@16
or point DATABASE_URL at a server you already run, e.g.
  export DATABASE_URL='postgres://user:pass@127.0.0.1:5432/carbonledger?sslmode=disable'`

// Cluster is a private cluster's location and how to reach it.
type Cluster struct {
	Dir    string // the cluster's data directory
	BinDir string // where initdb and pg_ctl live
	Log    io.Writer
	runAs  *user.User // non-nil when started as root
}

// Default returns the cluster for a project directory: the data directory is
// CARBONLEDGER_DATA_DIR when set, else <project>/.data/pg, where <project> is the nearest
// ancestor of the working directory that holds go.mod and migrations/ (or the working
// directory itself). Progress goes to log.
func Default(log io.Writer) (*Cluster, error) {
	dir := os.Getenv("CARBONLEDGER_DATA_DIR")
	if dir == "" {
		root, err := ProjectRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, ".data", "pg")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: bin, Log: log}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, PostgreSQL must run as another user and there is no 'postgres' user; run as a normal user or create one (useradd -r postgres)")
		}
		c.runAs = u
		if !reachable(filepath.Dir(dir), u) {
			sum := sha256.Sum256([]byte(dir))
			alt := filepath.Join("/var/tmp", "carbonledger-"+hex.EncodeToString(sum[:6]), "pg")
			fmt.Fprintf(log, "carbonledger: %s is not reachable by the postgres user; the private cluster lives in %s\n", dir, alt)
			c.Dir = alt
		}
	}
	return c, nil
}

// ProjectRoot walks up from the working directory to the directory holding go.mod and
// migrations/; without one it returns the working directory.
func ProjectRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "migrations")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return wd, nil
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// reachable reports whether user u can traverse every directory from / down to dir (the
// directories that do not exist yet will be created by us, world-traversable).
func reachable(dir string, u *user.User) bool {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			s := st.Sys().(*syscall.Stat_t)
			mode := st.Mode().Perm()
			ok := mode&0o001 != 0 ||
				(int(s.Uid) == uid && mode&0o100 != 0) ||
				(int(s.Gid) == gid && mode&0o010 != 0)
			if !ok {
				return false
			}
		}
		if filepath.Dir(d) == d {
			return true
		}
	}
}

// FindBinDir finds PostgreSQL's server binaries, newest version first: PATH, pg_config
// --bindir, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, Homebrew's prefix.
func FindBinDir() (string, error) {
	var cands []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		cands = append(cands, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin"} {
		m, _ := filepath.Glob(pat)
		sort.Slice(m, func(i, j int) bool { return versionOf(m[i]) > versionOf(m[j]) })
		cands = append(cands, m...)
	}
	var tooOld []string
	for _, d := range cands {
		if !fileExists(filepath.Join(d, "initdb")) || !fileExists(filepath.Join(d, "pg_ctl")) {
			continue
		}
		out, err := exec.Command(filepath.Join(d, "initdb"), "--version").Output()
		if err != nil {
			continue
		}
		if v := versionOf(string(out)); v < 15 {
			tooOld = append(tooOld, fmt.Sprintf("%s (version %d)", d, v))
			continue
		}
		return d, nil
	}
	if len(tooOld) > 0 {
		return "", fmt.Errorf("found only PostgreSQL older than 15 in %s\n%s", strings.Join(tooOld, ", "), InstallHint)
	}
	return "", errors.New(InstallHint)
}

var majorRE = regexp.MustCompile(`(\d+)(\.\d+)?`)

func versionOf(s string) int {
	m := majorRE.FindAllStringSubmatch(s, -1)
	for _, x := range m {
		if v, _ := strconv.Atoi(x[1]); v >= 9 && v < 100 {
			return v
		}
	}
	return 0
}

// URL starts the cluster if needed (initialising it on first use) and returns a connection
// URL for the given database, which it creates when missing. Every database but "postgres"
// (the administrative one, through which the tests make their throwaway databases) commits
// synchronously, though the cluster does not (see ensureInit): it holds a ledger, and a write
// it acknowledged must survive a crash of PostgreSQL.
func (c *Cluster) URL(ctx context.Context, dbname string) (string, error) {
	unlock, err := c.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := c.ensureInit(ctx); err != nil {
		return "", err
	}
	port, err := c.ensureRunning(ctx)
	if err != nil {
		return "", err
	}
	pw, err := os.ReadFile(c.pwFile())
	if err != nil {
		return "", fmt.Errorf("private cluster: read password: %w", err)
	}
	admin := c.url(port, string(pw), "postgres")
	if err := createDB(ctx, admin, dbname); err != nil {
		return "", err
	}
	return c.url(port, string(pw), dbname), nil
}

func (c *Cluster) url(port int, pw, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("carbonledger", strings.TrimSpace(pw)),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func createDB(ctx context.Context, adminURL, name string) error {
	db, err := sql.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var exists, durable bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
		EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
		         WHERE d.datname = $1 AND s.setrole = 0 AND 'synchronous_commit=on' = ANY (s.setconfig))`, name).Scan(&exists, &durable); err != nil {
		return fmt.Errorf("private cluster: %w", err)
	}
	if !exists {
		if _, err := db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("private cluster: create database %s: %w", name, err)
		}
	}
	if !durable && name != "postgres" {
		if _, err := db.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(name)+` SET synchronous_commit = on`); err != nil {
			return fmt.Errorf("private cluster: database %s: %w", name, err)
		}
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// The password lives beside the cluster directory, readable only by the invoking user.
func (c *Cluster) pwFile() string  { return c.Dir + ".password" }
func (c *Cluster) logFile() string { return c.Dir + ".log" }

func (c *Cluster) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("private cluster: %w", err)
	}
	f, err := os.OpenFile(c.Dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("private cluster: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("private cluster: lock %s: %w", f.Name(), err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (c *Cluster) ensureInit(ctx context.Context) error {
	if fileExists(filepath.Join(c.Dir, "PG_VERSION")) {
		return nil
	}
	fmt.Fprintf(c.Log, "carbonledger: initialising a private PostgreSQL cluster in %s\n", c.Dir)
	if err := os.RemoveAll(c.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	pw := make([]byte, 18)
	rand.Read(pw)
	pwText := hex.EncodeToString(pw)
	if err := os.WriteFile(c.pwFile(), []byte(pwText+"\n"), 0o600); err != nil {
		return err
	}
	// initdb reads the password from a file the cluster's user can read; it is removed after.
	tmp, err := os.CreateTemp(filepath.Dir(c.Dir), ".pw-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tmp.WriteString(pwText + "\n")
	tmp.Close()
	if err := c.chown(c.Dir, tmp.Name()); err != nil {
		return err
	}
	out, err := c.run(ctx, filepath.Join(c.BinDir, "initdb"), "-D", c.Dir, "-U", "carbonledger",
		"--pwfile", tmp.Name(), "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions")
	if err != nil {
		os.RemoveAll(c.Dir)
		return fmt.Errorf("private cluster: initdb failed: %v\n%s", err, out)
	}
	// A development cluster: listen on loopback only, no unix socket (paths under a deep
	// checkout exceed the 107-byte socket limit), and commits that do not wait for the WAL
	// flush (a crash may lose the last moments, never corrupt), except in the databases
	// createDB makes for ledgers.
	conf := `
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
synchronous_commit = off
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
`
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(conf)
	f.Close()
	return err
}

// ensureRunning starts the cluster unless it runs, and returns its port: the port it last
// ran on when that is free (so URLs handed out before a restart still reach it), else any
// free one.
func (c *Cluster) ensureRunning(ctx context.Context) (int, error) {
	return c.ensureRunningOn(ctx, 0)
}

// ensureRunningOn starts the cluster on port (0: a free one) unless it runs, and returns its
// port.
func (c *Cluster) ensureRunningOn(ctx context.Context, port int) (int, error) {
	if p, err := c.readPort(); err == nil && c.ping(ctx, p) {
		return p, nil
	}
	if port == 0 {
		port = c.lastPort()
	}
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return 0, err
		}
	}
	if err := c.chown(c.Dir); err != nil {
		return 0, err
	}
	if !fileExists(c.logFile()) {
		os.WriteFile(c.logFile(), nil, 0o644)
	}
	c.chown(c.logFile())
	fmt.Fprintf(c.Log, "carbonledger: starting the private PostgreSQL cluster on 127.0.0.1:%d\n", port)
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "-l", c.logFile(), "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d", port), "start")
	if err != nil {
		tail, _ := os.ReadFile(c.logFile())
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return 0, fmt.Errorf("private cluster: pg_ctl start failed: %v\n%s\n%s", err, out, tail)
	}
	return port, nil
}

// lastPort is the port the cluster last ran on (postmaster.opts keeps its command line) if
// that port is free now, else 0.
func (c *Cluster) lastPort() int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.opts"))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`"-p" "(\d+)"`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	port, _ := strconv.Atoi(string(m[1]))
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0
	}
	l.Close()
	return port
}

// readPort reads the running server's port from postmaster.pid (its fourth line).
func (c *Cluster) readPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, errors.New("postmaster.pid: no port line")
	}
	return strconv.Atoi(strings.TrimSpace(lines[3]))
}

func (c *Cluster) ping(ctx context.Context, port int) bool {
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "status")
	if err != nil || !strings.Contains(string(out), "server is running") {
		return false
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stop stops the cluster if it runs.
func (c *Cluster) Stop(ctx context.Context) error {
	if !fileExists(filepath.Join(c.Dir, "PG_VERSION")) {
		fmt.Fprintf(c.Log, "carbonledger: no private cluster in %s\n", c.Dir)
		return nil
	}
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "status")
	if err != nil || !strings.Contains(string(out), "server is running") {
		fmt.Fprintf(c.Log, "carbonledger: the private cluster in %s is not running\n", c.Dir)
		return nil
	}
	out, err = c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("private cluster: pg_ctl stop: %v\n%s", err, out)
	}
	fmt.Fprintf(c.Log, "carbonledger: stopped the private cluster in %s\n", c.Dir)
	return nil
}

// run runs a PostgreSQL program, as the postgres user when we are root.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if c.runAs != nil {
		uid, _ := strconv.Atoi(c.runAs.Uid)
		gid, _ := strconv.Atoi(c.runAs.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(cmd.Env, "HOME="+c.runAs.HomeDir, "USER=postgres", "LOGNAME=postgres")
		cmd.Dir = "/"
	}
	// pg_ctl start leaves the server running with our stdout open; a pipe would never see
	// EOF, so output goes to a file.
	f, err := os.CreateTemp("", "carbonledger-pg-*.out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return out, err
}

// chown hands paths to the postgres user when we run as root.
func (c *Cluster) chown(paths ...string) error {
	if c.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.runAs.Uid)
	gid, _ := strconv.Atoi(c.runAs.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("private cluster: hand %s to the postgres user: %w", p, err)
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("private cluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
