package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/httpapi"
	"github.com/carbonledger/carbonledger/internal/store"
)

// The API section: deliveries posted to the HTTP API by concurrent clients over loopback,
// beside store.Deliver at the same concurrency on the same contracts in the same run. It
// takes its measured and warm-up seconds from the write section's settings.
var (
	apiClients  = 32 // concurrent clients, and writers at the store level beside them
	apiPairs    = 2  // store then API, twice, so that a machine drifting one way shows
	apiDBName   = "carbonledger_bench_api"
	apiLockKey  = int64(0x636c617069) // "clapi"
	apiBodyShow = 300                 // bytes of a failed answer's body kept for the report
)

// The targets for the API.
const (
	targetAPIRatio = 0.7                   // API ops/s / store ops/s at 32 clients over 64 contracts
	targetAPIP99   = 50 * time.Millisecond // the API's p99 at 32 clients over 64 contracts
)

// apiDiag is what a level cost beyond its figures: this process's CPU per delivery (client,
// server and store alike at the API level) and what the store's pool did.
type apiDiag struct {
	from       time.Time     // when the level started
	wall, cpu  time.Duration // the whole level, warm-up included, and this process's user+system CPU in it
	waits      int64         // waits for a pool connection
	idleClosed int64         // pool connections closed for want of idle room
	rate       float64       // the level's measured ops/s
}

// API runs the API section against the server of admin: a database of its own, 64 contracts,
// a recorder token, the real handler on a loopback listener, then store and API levels in
// turn. It drops its database when done.
func API(ctx context.Context, admin string, cfg Config, today time.Time) error {
	wc := cfg.Write
	if wc.Seconds <= 0 {
		wc.Seconds = 10
	}
	if wc.Warmup < 0 {
		wc.Warmup = 0
	}
	adminDB, release, err := ownSection(ctx, admin, "api", apiLockKey, []string{apiDBName}, cfg.Log)
	if err != nil {
		return err
	}
	defer release()
	apiURL, err := freshDB(ctx, adminDB, admin, apiDBName)
	if err != nil {
		return err
	}
	s, err := openFresh(ctx, apiURL, "api: migrating "+apiDBName, cfg.Log)
	if err != nil {
		return err
	}
	defer s.Close()
	codes, err := seedAPI(ctx, s, today, cfg.Log)
	if err != nil {
		return err
	}
	secret, err := s.CreateToken(ctx, "clbench-api", "recorder", nil)
	if err != nil {
		return fmt.Errorf("api: token: %w", err)
	}

	srv, base, conns, err := serveAPI(s, cfg.Log)
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	client := apiClient(apiClients)
	defer client.CloseIdleConnections()

	version, _ := showSetting(ctx, admin, "server_version")
	fsync, _ := showSetting(ctx, admin, "fsync")
	var poolSync string
	if err := s.DB().GetContext(ctx, &poolSync, `SHOW synchronous_commit`); err != nil {
		return err
	}

	warm, dur := time.Duration(wc.Warmup)*time.Second, time.Duration(wc.Seconds)*time.Second
	type pair struct {
		store, api         levelResult
		storeDiag, apiDiag apiDiag
	}
	var pairs []pair
	started := time.Now()
	level := 0
	for p := range apiPairs {
		var pr pair
		level++
		fmt.Fprintf(cfg.Log, "api: pair %d: store.Deliver, %d writers over %d contracts (%ds + %ds warm-up)\n", p+1, apiClients, len(codes), wc.Seconds, wc.Warmup)
		d0 := diagStart(s)
		pr.store, err = deliverLevel(ctx, s, apiClients, codes, warm, dur, today, level)
		if err != nil {
			return fmt.Errorf("api: store level: %w", err)
		}
		pr.storeDiag = d0.end(s, pr.store.rate())
		level++
		fmt.Fprintf(cfg.Log, "api: pair %d: POST deliveries, %d clients over %d contracts (%ds + %ds warm-up)\n", p+1, apiClients, len(codes), wc.Seconds, wc.Warmup)
		d0 = diagStart(s)
		pr.api, err = apiLevel(ctx, client, base, secret, apiClients, codes, warm, dur, today, level)
		if err != nil {
			return err
		}
		pr.apiDiag = d0.end(s, pr.api.rate())
		pairs = append(pairs, pr)
	}
	took := time.Since(started)

	// The report.
	out := cfg.Out
	fmt.Fprintf(out, "\napi: deliveries of 1 t by POST /v1/contracts/{code}/deliveries from %d concurrent clients over loopback (keep-alive,\n", apiClients)
	fmt.Fprintf(out, "the token, kept after its first lookup and checked in the write's transaction, and store.Submit each), beside store.Deliver from %d goroutines, each client or writer on its own contracts of %d (%d prior deliveries each);\n", apiClients, len(codes), spreadHistory)
	fmt.Fprintf(out, "client, server and store in this one process; store then API, %d times, in the same run; %d s per level after %d s warm-up\n", apiPairs, wc.Seconds, wc.Warmup)
	fmt.Fprintf(out, "server: PostgreSQL %s; synchronous_commit %s (store pool), fsync %s; %d CPUs, GOMAXPROCS %d\n\n",
		version, poolSync, fsync, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "pair\tstore ops/s\tp50 ms\tp99 ms\terrors\tAPI ops/s\tp50 ms\tp99 ms\terrors\tAPI/store\t\n")
	var ratios []float64
	for i, p := range pairs {
		ratio := "-"
		if p.store.rate() > 0 {
			r := p.api.rate() / p.store.rate()
			ratios = append(ratios, r)
			ratio = fmt.Sprintf("%.2f", r)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t%s\t\n", i+1,
			p.store.rate(), ms(pct(p.store.lat, .5)), ms(pct(p.store.lat, .99)), p.store.errs,
			p.api.rate(), ms(pct(p.api.lat, .5)), ms(pct(p.api.lat, .99)), p.api.errs, ratio)
	}
	tw.Flush()
	for i, p := range pairs {
		if p.store.firstErr != nil {
			fmt.Fprintf(out, "  store, pair %d: %d failed deliveries, the first: %v\n", i+1, p.store.errs, p.store.firstErr)
		}
		if p.api.firstErr != nil {
			fmt.Fprintf(out, "  API, pair %d: %d failed requests, the first: %v\n", i+1, p.api.errs, p.api.firstErr)
		}
	}
	fmt.Fprintf(out, "\nwhat each level cost this process, warm-up included (at the API level the clients', the server's and the store's\n")
	fmt.Fprintf(out, "CPU alike), and what the store's pool did (connections closed for want of idle room are opened again, with authentication):\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "level\tGo CPU us/op\tpool waits\tpool conns closed (idle limit)\t\n")
	for i, p := range pairs {
		for _, l := range []struct {
			name string
			d    apiDiag
		}{{"store", p.storeDiag}, {"API", p.apiDiag}} {
			fmt.Fprintf(tw, "%s, pair %d\t%s\t%d\t%d\t\n", l.name, i+1, l.d.cpuPerOp(), l.d.waits, l.d.idleClosed)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "API connections opened: %d for %d clients; the levels took %s\n", conns.Load(), apiClients, took.Round(time.Second))

	fmt.Fprintf(out, "\ntargets (figures, not pass/fail of the command):\n")
	if len(ratios) == len(pairs) && len(ratios) > 0 {
		mean := 0.0
		each := make([]string, len(ratios))
		for i, r := range ratios {
			mean += r
			each[i] = fmt.Sprintf("%.2f", r)
		}
		mean /= float64(len(ratios))
		fmt.Fprintf(out, "  API >= %.1f x store at %d clients over %d contracts: mean of %s = %.2f  %s\n",
			targetAPIRatio, apiClients, len(codes), strings.Join(each, ", "), mean, met(mean >= targetAPIRatio))
	} else {
		fmt.Fprintf(out, "  API >= %.1f x store at %d clients over %d contracts: no store figure  not measured\n", targetAPIRatio, apiClients, len(codes))
	}
	var worst time.Duration
	each := make([]string, len(pairs))
	measured := true
	for i, p := range pairs {
		p99 := pct(p.api.lat, .99)
		worst = max(worst, p99)
		each[i] = ms(p99)
		measured = measured && len(p.api.lat) > 0
	}
	fmt.Fprintf(out, "  API p99 at %d clients over %d contracts < %s: %s ms (worst %s)  %s\n",
		apiClients, len(codes), targetAPIP99, strings.Join(each, ", "), ms(worst), met(measured && worst < targetAPIP99))
	return nil
}

// diagStart takes the counters a level's apiDiag is the change of.
func diagStart(s *store.Store) apiDiag {
	st := s.DB().Stats()
	return apiDiag{from: time.Now(), cpu: processCPU(), waits: st.WaitCount, idleClosed: st.MaxIdleClosed}
}

// end is what changed since d was taken, for a level that ran at rate ops/s.
func (d apiDiag) end(s *store.Store, rate float64) apiDiag {
	st := s.DB().Stats()
	return apiDiag{from: d.from, wall: time.Since(d.from), cpu: processCPU() - d.cpu,
		waits: st.WaitCount - d.waits, idleClosed: st.MaxIdleClosed - d.idleClosed, rate: rate}
}

// cpuPerOp is the level's CPU over the deliveries it made, warm-up included, taking the
// measured rate for the whole level (both kinds of level alike).
func (d apiDiag) cpuPerOp() string {
	n := d.rate * d.wall.Seconds()
	if n < 1 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d.cpu.Microseconds())/n)
}

// seedAPI loads, in bulk, the 64 contracts the section's clients post to, each with a history.
func seedAPI(ctx context.Context, s *store.Store, today time.Time, log io.Writer) ([]string, error) {
	var codes []string
	var hs []*store.SealedHistory
	for i := range spreadOver {
		code := fmt.Sprintf("API-%02d", i+1)
		h, err := DeliveryHistory(writeContract(code, today), spreadHistory, today)
		if err != nil {
			return nil, err
		}
		codes, hs = append(codes, code), append(hs, h)
	}
	start := time.Now()
	next := 0
	err := s.LoadSealed(ctx, func() (*store.SealedHistory, error) {
		if next == len(hs) {
			return nil, nil
		}
		next++
		return hs[next-1], nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("api: load contracts: %w", err)
	}
	fmt.Fprintf(log, "api: loaded %d contracts in %s\n", len(hs), time.Since(start).Round(time.Millisecond))
	return codes, nil
}

// serveAPI serves the API over s on a loopback port, logging nothing, and returns the server,
// its base URL and a count of the connections it accepted.
func serveAPI(s *store.Store, log io.Writer) (*http.Server, string, *atomic.Int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("api: listen: %w", err)
	}
	conns := new(atomic.Int64)
	srv := &http.Server{
		Handler:           httpapi.New(s, slog.New(slog.DiscardHandler)).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(log, "api: serve: %v\n", err)
		}
	}()
	return srv, "http://" + ln.Addr().String(), conns, nil
}

// apiClient is an HTTP client that keeps a connection per client alive, with no proxy.
func apiClient(n int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = 2 * n
	tr.MaxIdleConnsPerHost = n
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// apiLevel runs n clients posting deliveries of 1 t for warm+dur and measures the requests
// that started after the warm-up, as deliverLevel does for the store: client i takes the
// contracts j with j%n == i in turn, each request with a key of its own. Only a 201 is a
// success.
func apiLevel(ctx context.Context, client *http.Client, base, secret string, n int, codes []string, warm, dur time.Duration, today time.Time, level int) (levelResult, error) {
	body := `{"tonnes":"1","date":"` + today.Format(time.DateOnly) + `"}`
	auth := "Bearer " + secret
	r, err := runLevel(ctx, n, codes, warm, dur, func(i, k int, code string) error {
		return postDelivery(ctx, client, base+"/v1/contracts/"+code+"/deliveries", auth, fmt.Sprintf("bench:api:%d:%d:%d", level, i, k), body)
	})
	if err == nil && r.ops == 0 && r.firstErr != nil {
		err = fmt.Errorf("api: every request failed at %d clients: %w", n, r.firstErr)
	}
	return r, err
}

// postDelivery posts one delivery and reads the whole answer (so the connection is kept);
// anything but a 201 is an error carrying the status and the start of the body.
func postDelivery(ctx context.Context, client *http.Client, url, auth, key, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, int64(apiBodyShow)))
	io.Copy(io.Discard, resp.Body)
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
}
