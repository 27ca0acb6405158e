package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
)

// testAPI is a server over a fresh database, with a token of each role (and one limited to
// the contract SCOPED) and the log it wrote.
type testAPI struct {
	t      testing.TB
	srv    *httptest.Server
	api    *Server
	store  *store.Store
	tokens map[string]string // by name: admin, recorder, viewer, scoped
	log    *syncBuffer
}

// today is the clock of every test server: dates in the tests lie before it.
var today = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func newAPI(t testing.TB) *testAPI {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Now = func() time.Time { return today }
	log := &syncBuffer{}
	api := New(st, slog.New(slog.NewJSONHandler(log, nil)))
	api.Now = st.Now
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	ta := &testAPI{t: t, srv: srv, api: api, store: st, tokens: map[string]string{}, log: log}
	for _, role := range store.Roles {
		if ta.tokens[role], err = st.CreateToken(ctx, role, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	ta.contract("SCOPED", "")
	if ta.tokens["scoped"], err = st.CreateToken(ctx, "scoped", "admin", []string{"SCOPED"}); err != nil {
		t.Fatal(err)
	}
	return ta
}

// contract adds a contract through the API as admin: a 1,000 t biochar offtake over
// 2025-2026; over, when not empty, is a JSON object whose members replace the defaults'.
func (ta *testAPI) contract(code, over string) {
	ta.t.Helper()
	if st, _, body := ta.do("POST", "/v1/contracts", "admin", "contract:"+code, contractDoc(ta.t, code, over)); st != http.StatusCreated {
		ta.t.Fatalf("add contract %s: %d %s", code, st, body)
	}
}

// contractDoc is the contract JSON of contract's defaults with over's members.
func contractDoc(t testing.TB, code, over string) string {
	t.Helper()
	doc := map[string]any{"code": code, "buyer": "Acme Buyer", "supplier": "Char Supplier", "project": "Kiln 1",
		"method": "biochar", "country": "MX", "region": "Guanajuato", "registry": "puro", "standard": "Puro biochar",
		"durability_years": "100+", "term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-15",
		"tonnes": "1000", "price_per_tonne": "150.00", "currency": "USD", "delivery_mode": "transfer"}
	if over != "" {
		if err := json.Unmarshal([]byte(over), &doc); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// do sends a request with the named token ("" for none) and Idempotency-Key ("" for none)
// and returns the status, the headers and the body.
func (ta *testAPI) do(method, path, token, key, body string) (int, http.Header, []byte) {
	ta.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ta.srv.URL+path, rd)
	if err != nil {
		ta.t.Fatal(err)
	}
	if token != "" {
		secret, ok := ta.tokens[token]
		if !ok {
			secret = token // a raw secret
		}
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// problem decodes a problem body, failing the test when it is not one.
func (ta *testAPI) problem(h http.Header, body []byte) Problem {
	ta.t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		ta.t.Fatalf("Content-Type %q, want application/problem+json (body %s)", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		ta.t.Fatalf("not a problem: %v: %s", err, body)
	}
	return p
}

// syncBuffer is the server's log, written by its goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
