package pgdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NewCluster returns a cluster of its own in dir, initialised and started by Start: for tests
// that stop, kill or replicate a server, which must never touch the private cluster other
// tests share. dir's parent must be reachable by the postgres user when run as root.
func NewCluster(dir string, log io.Writer) (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: bin, Log: log}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, PostgreSQL must run as another user and there is no 'postgres' user")
		}
		c.runAs = u
	}
	return c, nil
}

// Start initialises the cluster if need be, starts it unless it runs, and returns its port.
func (c *Cluster) Start(ctx context.Context) (int, error) {
	unlock, err := c.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := c.ensureInit(ctx); err != nil {
		return 0, err
	}
	return c.ensureRunning(ctx)
}

// StartOn starts the initialised cluster on port unless it runs: a restart where clients
// expect it.
func (c *Cluster) StartOn(ctx context.Context, port int) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	_, err = c.ensureRunningOn(ctx, port)
	return err
}

// AdminURL is the URL of database db on the running cluster, as its superuser (the database is
// not created).
func (c *Cluster) AdminURL(db string) (string, error) {
	port, err := c.readPort()
	if err != nil {
		return "", fmt.Errorf("cluster %s: not running: %w", c.Dir, err)
	}
	pw, err := os.ReadFile(c.pwFile())
	if err != nil {
		return "", err
	}
	return c.url(port, string(pw), db), nil
}

// Port is the running server's port.
func (c *Cluster) Port() (int, error) { return c.readPort() }

// StopMode stops the server with pg_ctl's shutdown mode: "smart", "fast" or "immediate" (no
// checkpoint: crash recovery at the next start, as after a power cut).
func (c *Cluster) StopMode(ctx context.Context, mode string) error {
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "-m", mode, "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// Kill sends SIGKILL to the postmaster, as a crash of the host's database process would; its
// backends notice their postmaster is gone and exit.
func (c *Cluster) Kill() error {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Standby makes a hot standby of the running cluster c in dir: a base backup streamed with
// pg_basebackup, which writes standby.signal and the primary's connection (-R), then starts
// it on a free port. The standby's application_name is name, for synchronous_standby_names.
func (c *Cluster) Standby(ctx context.Context, dir, name string) (*Cluster, error) {
	port, err := c.readPort()
	if err != nil {
		return nil, err
	}
	pw, err := os.ReadFile(c.pwFile())
	if err != nil {
		return nil, err
	}
	s := &Cluster{Dir: dir, BinDir: c.BinDir, Log: c.Log, runAs: c.runAs}
	if err := os.WriteFile(s.pwFile(), pw, 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.chown(dir); err != nil {
		return nil, err
	}
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=carbonledger password=%s application_name=%s", port, strings.TrimSpace(string(pw)), name)
	out, err := s.runEnv(ctx, nil, filepath.Join(c.BinDir, "pg_basebackup"), "-d", conn, "-D", dir, "-R", "-X", "stream", "-c", "fast")
	if err != nil {
		return nil, fmt.Errorf("pg_basebackup: %v\n%s", err, out)
	}
	// the primary's port was copied with its postmaster.pid-less data; the standby gets its own
	os.Remove(filepath.Join(dir, "postmaster.pid"))
	if _, err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Promote makes a standby the primary and waits until it accepts writes.
func (c *Cluster) Promote(ctx context.Context) error {
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Dir, "-w", "promote")
	if err != nil {
		return fmt.Errorf("pg_ctl promote: %v\n%s", err, out)
	}
	return nil
}

// runEnv is run with extra environment variables.
func (c *Cluster) runEnv(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "PGTZ=UTC"), env...)
	if c.runAs != nil {
		uid, _ := strconv.Atoi(c.runAs.Uid)
		gid, _ := strconv.Atoi(c.runAs.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(cmd.Env, "HOME="+c.runAs.HomeDir, "USER=postgres", "LOGNAME=postgres")
		cmd.Dir = "/"
	}
	return cmd.CombinedOutput()
}
