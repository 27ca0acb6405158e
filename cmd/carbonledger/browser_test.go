package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardInChromium is the dashboard end to end, as a user meets it: the real binary
// serves a database that holds a contract and two deliveries written over the API, and
// Debian's headless Chromium signs in with a token, opens the portfolio, a contract's page
// and the audit, and checks that the delivered figure and the charts are on them. The
// screenshots are kept as test artifacts ($CARBONLEDGER_TEST_ARTIFACTS, or test-artifacts/ at
// the repository's root). `make test` installs Chromium when it is missing; the test never
// skips.
func TestDashboardInChromium(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the dashboard test drives Chromium, and there is none on $PATH (%v): `make test` installs it from Debian's packages when it is missing (or run: sudo apt-get install -y chromium)", err)
	}
	// Nothing here may hang: every step runs under this deadline or a shorter one.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()

	c := newCLI(t)
	bin := buildBinary(ctx, t)
	var tok, tokErr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "token", "create", "--name", "e2e", "--role", "admin", "--db", c.url)
	cmd.Stdout, cmd.Stderr = &tok, &tokErr
	if err := cmd.Run(); err != nil {
		t.Fatalf("carbonledger token create: %v\n%s", err, tokErr.String())
	}
	token := strings.TrimSpace(tok.String())
	if !strings.HasPrefix(token, "clt_") {
		t.Fatalf("token create printed %q, want a token", token)
	}

	srv := startServer(ctx, t, bin, c.url)

	// A contract and two deliveries over the API: 12.5 t and 7.25 t, in the contract's term.
	doc, err := os.ReadFile("testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var contract struct {
		Code      string `json:"code"`
		TermStart string `json:"term_start"`
		TermEnd   string `json:"term_end"`
	}
	if err := json.Unmarshal(doc, &contract); err != nil {
		t.Fatal(err)
	}
	if contract.Code != "CLI-1" || !strings.HasPrefix(contract.TermStart, "2025-") || !strings.HasPrefix(contract.TermEnd, "2025-") {
		t.Fatalf("testdata/contract.json changed (code %s, term %s to %s): the deliveries below fall in 2025", contract.Code, contract.TermStart, contract.TermEnd)
	}
	api := &http.Client{Timeout: 15 * time.Second}
	post := func(path, key, body string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "POST", srv.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := api.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s, want 201\nserver log:\n%s", path, resp.StatusCode, b, srv.log.String())
		}
	}
	post("/v1/contracts", "e2e-sign", string(doc))
	post("/v1/contracts/"+contract.Code+"/deliveries", "e2e-d1", `{"tonnes":"12.5","date":"2025-03-01"}`)
	post("/v1/contracts/"+contract.Code+"/deliveries", "e2e-d2", `{"tonnes":"7.25","date":"2025-06-15"}`)
	const delivered = "19.750"

	// The browser: localhost, not 127.0.0.1, is what a user types, and Chromium keeps the
	// session's Secure cookie on http://localhost.
	base := strings.Replace(srv.url, "http://127.0.0.1:", "http://localhost:", 1)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1600),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first Do starts the browser, under the test's deadline only (a step's shorter
	// deadline would end the browser with the step).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	arts := artifactsDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(arts, "dashboard-"+name+".png")
			if err := os.WriteFile(path, png, 0o644); err != nil {
				return err
			}
			t.Logf("screenshot: %s", path)
			return nil
		})
	}
	// step runs actions under a short deadline; when one fails, the page as it stands is
	// kept as dashboard-failed-NAME.png beside the others.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		err := chromedp.Do(sctx, actions...)
		if err == nil {
			return
		}
		fctx, fcancel := context.WithTimeout(bctx, 5*time.Second)
		defer fcancel()
		loc, _ := chromedp.Run(fctx, chromedp.Location())
		chromedp.Do(fctx, shot("failed-"+name))
		t.Fatalf("%s (at %s): %v\nserver log:\n%s", name, loc, err, srv.log.String())
	}
	// charts checks that sel finds a chart that is drawn: laid out and not empty.
	charts := func(sel string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			n, err := chromedp.Evaluate[int](`[...document.querySelectorAll(`+jsString(sel)+`)]`+
				`.filter(s => { const r = s.getBoundingClientRect(); return r.width > 100 && r.height > 20 && s.querySelector("rect, path, line, circle, polyline") }).length`)(ctx, tg)
			if err != nil {
				return err
			}
			if n == 0 {
				t.Errorf("no chart %s is drawn", sel)
			}
			return nil
		})
	}
	wantPath := func(path string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			loc, err := chromedp.Location()(ctx, tg)
			if err != nil {
				return err
			}
			if loc != base+path {
				return fmt.Errorf("the browser is at %s, want %s", loc, base+path)
			}
			return nil
		})
	}
	title := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			got, err := chromedp.Title()(ctx, tg)
			if err == nil && got != want {
				t.Errorf("the page's title is %q, want %q", got, want)
			}
			return err
		})
	}

	// Signing in lands on the portfolio.
	step("login",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		shot("login"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("contracts")),
		wantPath("/"),
		title("Portfolio · carbonledger"),
	)

	// The portfolio: the contract's delivered figure in its row, and the charts.
	row := `#contracts tbody tr:has(a[href="/contracts/` + contract.Code + `"])`
	step("portfolio",
		figure(t, chromedp.CSS(row+` td[data-figure="delivered"] a`), delivered),
		charts(`svg.hchart`),
		shot("portfolio"),
	)

	// The contract's link opens its page: the delivered figure in its summary and in its
	// first (and only) contract year, and the term chart.
	step("contract",
		chromedp.Click(chromedp.CSS(row+` th a`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.vchart`)),
		wantPath("/contracts/"+contract.Code),
		title("Contract "+contract.Code+" · carbonledger"),
		figure(t, chromedp.Search(`//dl[contains(@class,"facts")]/div[dt="Delivered"]/dd/a`), delivered),
		figure(t, chromedp.Search(`//table[@id="years"]/tbody/tr[td[1]="`+contract.TermStart+`"]/td[4]/a`), delivered),
		charts(`svg.vchart`),
		shot("contract-"+contract.Code),
	)

	// The audit, from the navigation bar: clean.
	step("audit",
		chromedp.Click(chromedp.CSS(`nav.main a[href="/audit"]`)),
		chromedp.WaitVisible(chromedp.ID("audit-status")),
		wantPath("/audit"),
		figure(t, chromedp.ID("audit-status"), "clean"),
		shot("audit"),
	)

	// Close the browser first, then stop the server and expect a clean exit.
	cctx, ccancel := context.WithTimeout(bctx, 10*time.Second)
	defer ccancel()
	if err := chromedp.Cancel(cctx); err != nil {
		t.Errorf("close the browser: %v", err)
	}
	srv.stop(t)
	t.Logf("the dashboard in Chromium: %s", time.Since(start).Round(time.Millisecond))
}

// figure checks the visible text of the first element that sel finds.
func figure[S chromedp.Selectable](t *testing.T, sel S, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		got, err := chromedp.Text(sel, chromedp.NodeVisible)(ctx, tg)
		if err != nil {
			return fmt.Errorf("%v: %w", sel, err)
		}
		if strings.TrimSpace(got) != want {
			t.Errorf("%v says %q, want %q", sel, strings.TrimSpace(got), want)
		}
		return nil
	})
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// buildBinary builds this command, as a user gets it, into a temporary directory.
func buildBinary(ctx context.Context, t *testing.T) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "carbonledger")
	out, err := exec.CommandContext(ctx, gocmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// artifactsDir is where the test keeps what a person may want to look at afterwards:
// $CARBONLEDGER_TEST_ARTIFACTS, or test-artifacts/ at the repository's root. It removes the
// dashboard screenshots an earlier run left there.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CARBONLEDGER_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The screenshots of an earlier run would pass for this one's.
	old, _ := filepath.Glob(filepath.Join(dir, "dashboard-*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	return dir
}

// server is `carbonledger serve` running as a process of its own.
type server struct {
	cmd    *exec.Cmd
	url    string
	log    *serverLog
	exited chan error
	once   sync.Once
}

// startServer starts `carbonledger serve` on a free port and waits for it to say where it
// listens.
func startServer(ctx context.Context, t *testing.T, bin, db string) *server {
	t.Helper()
	s := &server{log: &serverLog{listening: make(chan string, 1)}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start carbonledger serve: %v", err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	// Registered after newCLI's, this cleanup stops the server before the database goes.
	t.Cleanup(func() { s.stop(t) })
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case s.url = <-s.log.listening:
	case err := <-s.exited:
		s.exited <- err
		t.Fatalf("carbonledger serve exited before it listened (%v):\n%s", err, s.log.String())
	case <-wait.Done():
		t.Fatalf("carbonledger serve did not say it listens within 30 s:\n%s", s.log.String())
	}
	return s
}

// stop sends SIGTERM and expects the server to exit 0 within 30 s (it kills it otherwise).
// Only the first call stops it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM to carbonledger serve: %v", err)
		}
		select {
		case err := <-s.exited:
			if err != nil {
				t.Errorf("carbonledger serve exited with %v after SIGTERM, want 0:\n%s", err, s.log.String())
			}
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("carbonledger serve did not stop within 30 s of SIGTERM:\n%s", s.log.String())
		}
	})
}

// serverLog keeps the server's stderr and tells listening the URL of its first
// {"msg":"listening","url":...} line.
type serverLog struct {
	syncBuf
	lineMu    sync.Mutex
	line      []byte // the line written so far, until the server listens
	found     bool
	listening chan string
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.lineMu.Lock()
	defer l.lineMu.Unlock()
	for rest := p; !l.found && len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			l.line = append(l.line, rest...)
			break
		}
		l.line = append(l.line, rest[:i]...)
		rest = rest[i+1:]
		var rec struct{ Msg, URL string }
		if json.Unmarshal(l.line, &rec) == nil && rec.Msg == "listening" && rec.URL != "" {
			l.found = true
			l.listening <- rec.URL
		}
		l.line = l.line[:0]
	}
	return l.syncBuf.Write(p)
}
