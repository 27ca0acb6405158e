// Package httpapi is the HTTP front end: the JSON API under /v1. Like the CLI it only maps its
// input (paths, query strings, bodies) to the field values the ledger parses, calls the store
// through the same seam (store.Submit, service.*), and renders what comes back in the same
// JSON forms. Every route, with the role it needs, is in routes(); the OpenAPI document
// (openapi.json) describes exactly those routes, which a test checks.
//
// Conventions: writes need an Idempotency-Key header. An operation's key is its entry's key
// in the journal, so a retry replays the recorded entry (Idempotency-Replayed: true) and the
// same key with another request is refused (422); answers that are not an entry (a batch, an
// audit statement) are kept under their key for good. Errors are RFC 9457 problems.
package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// Server serves the API over one store.
type Server struct {
	Store *store.Store
	// Reads, when set, is a store on a hot standby that the reports, the audit, the export
	// and the dashboard's pages read from, sparing the primary; writes, the API's own reads
	// (a client reads what it just wrote), tokens and kept answers stay on Store.
	Reads *store.Store
	Log   *slog.Logger
	// Now is the clock for the rules about dates (the future-date limit).
	Now             func() time.Time
	FutureTolerance time.Duration
	// SigningKey, when set, signs the audit statements the API writes.
	SigningKey ed25519.PrivateKey
	// MaxBody bounds a request body (MaxBatchBody a batch's).
	MaxBody, MaxBatchBody int64
	// RequestTimeout bounds each API request but the long ones (the audit, audit
	// statements, the export), which LongRequestTimeout bounds; 0 for no limit. When it
	// passes, the request's database work is cancelled and the client gets a 503.
	RequestTimeout, LongRequestTimeout time.Duration

	inflight sync.Map // Idempotency-Keys of writes running now: a second one gets 409
	// tokens are the active tokens looked up, by the SHA-256 of their secret; only the
	// routes whose writes check the token again in their transaction read them
	tokens sync.Map
	// sessionKey signs the dashboard's session cookies and CSRF tokens; drawn when the
	// server starts, so a restart signs everyone out.
	sessionKey []byte
}

// New returns a server over st with the defaults.
func New(st *store.Store, log *slog.Logger) *Server {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand does not fail on a supported platform
	}
	return &Server{Store: st, Log: log, Now: time.Now, FutureTolerance: 24 * time.Hour,
		MaxBody: 1 << 20, MaxBatchBody: 8 << 20, sessionKey: key,
		RequestTimeout: DefaultRequestTimeout, LongRequestTimeout: DefaultLongRequestTimeout}
}

// The request limits a server has unless told otherwise: a minute for a request (a write
// waits at most the store's lock timeout for its contract), five minutes for an audit of a
// large ledger or an export (the server's write timeout: no answer could be sent later).
const (
	DefaultRequestTimeout     = time.Minute
	DefaultLongRequestTimeout = 5 * time.Minute
)

// limitOf is the time route rt's requests may take (0: no limit).
func (s *Server) limitOf(rt Route) time.Duration {
	switch rt.Path {
	case "/v1/audit", "/v1/audit/statements", "/v1/export":
		return s.LongRequestTimeout
	}
	return s.RequestTimeout
}

type limitKey struct{}

// withLimit runs r under its route's limit: its context ends when the limit passes, which
// cancels the statement running for it (lib/pq sends PostgreSQL a cancel request).
func (s *Server) withLimit(r *http.Request, rt Route) (*http.Request, context.CancelFunc) {
	d := s.limitOf(rt)
	if d <= 0 {
		return r, func() {}
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), limitKey{}, d), d)
	return r.WithContext(ctx), cancel
}

// timedOut reports whether r's limit passed, and what it was.
func (s *Server) timedOut(r *http.Request) (time.Duration, bool) {
	d, ok := r.Context().Value(limitKey{}).(time.Duration)
	return d, ok && errors.Is(r.Context().Err(), context.DeadlineExceeded)
}

// reads is the store the reports, the audit, the export and the dashboard read from.
func (s *Server) reads() *store.Store {
	if s.Reads != nil {
		return s.Reads
	}
	return s.Store
}

// handlerFunc is a route's handler: it writes a success itself and returns any failure,
// which the router answers as a problem.
type handlerFunc func(w http.ResponseWriter, r *http.Request, tok store.Token) error

// Route is one operation of the API: its method and path pattern (Go's ServeMux syntax,
// which is OpenAPI's for the {name} parts), and the role a token needs ("" for none).
type Route struct {
	Method, Path, Role string
	handle             handlerFunc
	// checkedInWrite: the route's writes check their token again in their own transaction
	// (store.WithToken), so its token may come from those the server keeps, saving a query
	// per request; every other route reads its token afresh. A revoked token is refused by
	// every request after the revocation either way.
	checkedInWrite bool
}

// route is a Route whose token is read afresh on every request.
func route(method, path, role string, h handlerFunc) Route {
	return Route{Method: method, Path: path, Role: role, handle: h}
}

// opRoute is a POST of postOp: an operation under the contract in the path, which reaches
// the store through Submit and is checked in its write.
func (s *Server) opRoute(path, role string, op ledger.Op) Route {
	return Route{Method: http.MethodPost, Path: path, Role: role, handle: s.postOp(op), checkedInWrite: true}
}

// Routes lists the API's operations: the OpenAPI document has exactly these.
func (s *Server) Routes() []Route {
	return []Route{
		route("GET", "/healthz", "", s.healthz),
		route("GET", "/readyz", "", s.readyz),
		route("GET", "/v1/openapi.json", "", s.openapi),
		route("POST", "/v1/contracts", "admin", s.postContract),
		route("GET", "/v1/contracts", "viewer", s.listContracts),
		route("GET", "/v1/contracts/{code}", "viewer", s.getContract),
		s.opRoute("/v1/contracts/{code}/amendments", "admin", "amend"),
		s.opRoute("/v1/contracts/{code}/deliveries", "recorder", "deliver"),
		s.opRoute("/v1/contracts/{code}/retirements", "recorder", "retire"),
		s.opRoute("/v1/contracts/{code}/cancellations", "recorder", "cancel"),
		s.opRoute("/v1/contracts/{code}/reversals", "recorder", "reverse"),
		route("GET", "/v1/contracts/{code}/entries", "viewer", s.contractEntries),
		route("GET", "/v1/contracts/{code}/serials", "viewer", s.serials),
		route("GET", "/v1/entries", "viewer", s.feed),
		route("GET", "/v1/entries/{id}", "viewer", s.getEntry),
		route("POST", "/v1/entries/{id}/revert", "recorder", s.postRevert),
		route("POST", "/v1/batches", "recorder", s.postBatch),
		route("GET", "/v1/reports/{kind}", "viewer", s.report),
		route("GET", "/v1/audit", "viewer", s.audit),
		route("POST", "/v1/audit/statements", "viewer", s.postStatement),
		route("GET", "/v1/export", "viewer", s.export),
	}
}

// Handler is the API with its middleware: recovery, the access log, authentication.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	s.dashboardRoutes(mux)
	// Anything no route matches: a path some route has under other methods is a 405 that
	// names them (Allow), any other a 404; both as problems.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeProblem(w, r, newProblem("method-not-allowed", r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allow, " or ")))
			return
		}
		s.writeProblem(w, r, newProblem("not-found", "no such resource: "+r.URL.Path))
	})
	return s.logged(mux)
}

// wrap authenticates (when the route needs a role), checks the role, runs the handler and
// answers its failure as a problem.
func (s *Server) wrap(rt Route) http.Handler {
	kept := rt.checkedInWrite
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, cancel := s.withLimit(r, rt)
		defer cancel()
		var tok store.Token
		if rt.Role != "" {
			var err error
			if tok, err = s.authenticate(r, kept); err != nil {
				s.writeProblem(w, r, err)
				return
			}
			setLogToken(r, tok.Name)
			r = r.WithContext(store.WithRecorder(r.Context(), "token:"+tok.Name))
			if kept {
				r = r.WithContext(store.WithToken(r.Context(), tok.Name))
			}
			if !tok.Can(rt.Role) {
				s.writeProblem(w, r, newProblem("forbidden", fmt.Sprintf("token %s is a %s; this needs the %s role", tok.Name, tok.Role, rt.Role)))
				return
			}
		}
		if err := rt.handle(w, r, tok); err != nil {
			if errors.Is(err, store.ErrTokenRevoked) {
				s.tokens.Delete(tokenSum(r))
				err = newProblem("unauthorized", "the token "+tok.Name+" was revoked")
			}
			s.writeProblem(w, r, err)
		}
	})
}

// tokenSum is the SHA-256 of the request's bearer token, the key of the tokens kept.
func tokenSum(r *http.Request) [sha256.Size]byte {
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return sha256.Sum256([]byte(strings.TrimSpace(secret)))
}

// authenticate finds the request's token (Authorization: Bearer TOKEN); a missing, unknown
// or revoked one is a 401 that says which, never echoing the token. With kept, a token the
// server looked up before is taken as it was (its write checks it again: Route.checkedInWrite).
func (s *Server) authenticate(r *http.Request, kept bool) (store.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// The dashboard's session reads too (its download links); a write needs the token.
		if _, _, ok := s.session(r); ok {
			tok, _, err := s.sessionToken(r)
			return tok, err
		}
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return store.Token{}, newProblem("unauthorized", "send a token: Authorization: Bearer TOKEN (carbonledger token create)")
	}
	var sum [sha256.Size]byte
	if kept {
		sum = tokenSum(r)
		if tok, ok := s.tokens.Load(sum); ok {
			return tok.(store.Token), nil
		}
	}
	tok, err := s.Store.TokenBySecret(r.Context(), strings.TrimSpace(secret))
	if kept && err == nil && tok.RevokedAt == nil {
		s.tokens.Store(sum, tok) // only the routes that take a kept token keep one
	}
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return tok, newProblem("unauthorized", "the token is not known")
	case err != nil:
		return tok, err
	case tok.RevokedAt != nil:
		return tok, newProblem("unauthorized", "the token "+tok.Name+" was revoked")
	}
	return tok, nil
}

// covers refuses a contract outside the token's scope.
func covers(tok store.Token, code string) error {
	if tok.Covers(code) {
		return nil
	}
	return newProblem("forbidden", fmt.Sprintf("token %s may not act on contract %s", tok.Name, code))
}

// unscoped refuses a token limited to some contracts a read that spans every contract.
func unscoped(tok store.Token, what string) error {
	if tok.Contracts == nil {
		return nil
	}
	return newProblem("forbidden", fmt.Sprintf("token %s is limited to some contracts; %s spans every contract", tok.Name, what))
}

// readBody reads a JSON body up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, optional bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, newProblem("unsupported-media-type", "send the body as application/json (got "+ct+")")
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, newProblem("too-large", fmt.Sprintf("the body is larger than %d bytes", limit))
	case err != nil:
		return nil, newProblem("invalid", "the body could not be read: "+err.Error())
	case len(strings.TrimSpace(string(b))) == 0 && !optional:
		return nil, newProblem("invalid", "the body is empty; send a JSON object")
	}
	return b, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ store.Token) error {
	writeJSONStatus(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 when the database answers, 503 when it does not.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ store.Token) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.DB().PingContext(ctx); err != nil {
		return newProblem("unavailable", "the database does not answer: "+err.Error())
	}
	writeJSONStatus(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
	return nil
}

// isUnavailable tells a lost or refused database connection from other failures.
func isUnavailable(err error) bool {
	var ne net.Error
	var pe *pq.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pe):
		return pe.Code.Class() == "08" || pe.Code.Class() == "57" // connection exception, operator intervention
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "bad connection") || strings.Contains(msg, "database is closed")
}

// logged writes one JSON access-log line per request (the token's name, never the token)
// and turns a panic into a logged 500.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &logWriter{ResponseWriter: w, status: http.StatusOK}
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.ErrorContext(r.Context(), "panic", "method", r.Method, "path", logPath(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !lw.wrote {
					writeJSONStatus(lw, http.StatusInternalServerError, "application/problem+json", newProblem("internal", "internal error"))
				}
			}
			s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", logPath(r)), slog.Int("status", lw.status),
				slog.Int64("bytes", lw.bytes), slog.Float64("ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("token", info.token), slog.Bool("replayed", lw.Header().Get("Idempotency-Replayed") == "true"),
				slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(lw, r)
	})
}

// tokenShaped is a token as a client might misplace it in a URL's path (the log records the
// path, never the query or the headers).
var tokenShaped = regexp.MustCompile(regexp.QuoteMeta(store.TokenPrefix) + `[A-Za-z0-9_-]*`)

// logPath is the request's path as the log records it: a token pasted into it is replaced by
// "[token]", so no secret reaches the log even from a careless client.
func logPath(r *http.Request) string {
	p := r.URL.Path
	if !strings.Contains(p, store.TokenPrefix) {
		return p
	}
	return tokenShaped.ReplaceAllString(p, "[token]")
}

type infoKey struct{}

type requestInfo struct{ token string }

func setLogToken(r *http.Request, name string) {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		info.token = name
	}
}

type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *logWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
