package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/carbonledger/carbonledger/internal/export"
	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// OperationJSON is the answer to a write that records one entry.
type OperationJSON struct {
	Entry service.EntryJSON `json:"entry"`
}

// ContractCreatedJSON is the answer to POST /v1/contracts: the contract's code and its sign
// entry (GET /v1/contracts/{code} has its position).
type ContractCreatedJSON struct {
	Code  string            `json:"code"`
	Entry service.EntryJSON `json:"entry"`
}

// maxKey is the longest Idempotency-Key: the journal's own limit on an entry's key.
const maxKey = 200

func keyTooLong(n int) *Problem {
	p := newProblem("invalid", fmt.Sprintf("the Idempotency-Key is longer than %d bytes", n))
	p.Field, p.Rule = "Idempotency-Key", fmt.Sprintf("is longer than %d bytes", n)
	return p
}

// idempotencyKey reads the write's Idempotency-Key and marks it running; done unmarks it.
func (s *Server) idempotencyKey(r *http.Request) (key string, done func(), err error) {
	key = r.Header.Get("Idempotency-Key")
	if err := checkIdempotencyKey(key); err != nil {
		return "", nil, err
	}
	if _, busy := s.inflight.LoadOrStore(key, struct{}{}); busy {
		return "", nil, newProblem("request-in-progress", "a request with Idempotency-Key "+key+" is still running; retry when it has answered")
	}
	return key, func() { s.inflight.Delete(key) }, nil
}

// checkIdempotencyKey checks a write's Idempotency-Key header as given.
func checkIdempotencyKey(key string) error {
	switch {
	case key == "":
		return newProblem("idempotency-key-needed", fmt.Sprintf("every write needs an Idempotency-Key header (any unique text up to %d bytes, such as a UUID)", maxKey))
	case len(key) > maxKey:
		return keyTooLong(maxKey)
	case !utf8.ValidString(key):
		// encoding/json would write it as U+FFFD, so distinct keys would name one entry
		p := newProblem("invalid", "the Idempotency-Key is not valid UTF-8")
		p.Field, p.Rule = "Idempotency-Key", "is not valid UTF-8"
		return p
	}
	return nil
}

// keyReused is the problem of a key that holds another kind of answer.
func keyReused(key string) *Problem {
	p := newProblem("idempotency-key-reused", "Idempotency-Key "+key+" was used for another request; use a new key for a new request")
	p.Field, p.Value, p.Rule = "key", key, "was already used for a different request"
	return p
}

// writeResult answers a recorded entry: 201, or the same 201 and body marked as a replay.
func writeResult(w http.ResponseWriter, status int, body any, replay bool) {
	if replay {
		w.Header().Set("Idempotency-Replayed", "true")
	}
	writeJSONStatus(w, status, "application/json", body)
}

func (s *Server) postContract(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	key, done, err := s.idempotencyKey(r)
	if err != nil {
		return err
	}
	defer done()
	body, err := readBody(w, r, s.MaxBody, false)
	if err != nil {
		return err
	}
	c, err := ledger.ParseContractJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	if err := covers(tok, c.Code); err != nil {
		return err
	}
	if _, kept, err := s.Store.KeptResponseFor(r.Context(), key); err != nil {
		return err
	} else if kept {
		return keyReused(key)
	}
	res, err := s.Store.AddContract(r.Context(), c, key)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/contracts/"+c.Code)
	writeResult(w, http.StatusCreated, ContractCreatedJSON{Code: c.Code, Entry: service.EntryView(res.Entry)}, res.Replay)
	return nil
}

// opRequest turns a body into an operation's request: the path gives the contract (or the
// entry a revert corrects), the header the key, the body every other field by its name.
func (s *Server) opRequest(op ledger.Op, pathField, pathValue, key string, body []byte) (ledger.Request, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, ledger.Invalid("body", "", "is not a JSON object of the operation's fields")
	}
	for name, from := range map[string]string{"op": "the URL", pathField: "the URL", "key": "the Idempotency-Key header"} {
		if _, ok := m[name]; ok {
			return nil, ledger.Invalid(name, "", "is given by "+from+", not the body")
		}
	}
	if name, ok := ledger.RepeatedMember(body); ok { // the map kept only the last
		return nil, ledger.Invalid(name, "", "appears more than once")
	}
	m["op"], _ = json.Marshal(string(op))
	m[pathField], _ = json.Marshal(pathValue)
	m["key"], _ = json.Marshal(key)
	b, _ := json.Marshal(m)
	req, err := ledger.ParseOperationJSON(b)
	if err != nil {
		return nil, err
	}
	if err := req.Check(s.Now(), s.FutureTolerance); err != nil {
		return nil, err
	}
	return req, nil
}

// postOp records an operation under the contract in the path.
func (s *Server) postOp(op ledger.Op) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok store.Token) error {
		code := r.PathValue("code")
		if err := covers(tok, code); err != nil {
			return err
		}
		return s.submit(w, r, op, "contract", code)
	}
}

func (s *Server) postRevert(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	id := r.PathValue("id")
	book, err := s.Store.EntryBook(r.Context(), id)
	if err != nil {
		return err
	}
	if err := covers(tok, book); err != nil {
		return err
	}
	return s.submit(w, r, ledger.OpRevert, "entry", id)
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, op ledger.Op, pathField, pathValue string) error {
	key, done, err := s.idempotencyKey(r)
	if err != nil {
		return err
	}
	defer done()
	body, err := readBody(w, r, s.MaxBody, false)
	if err != nil {
		return err
	}
	req, err := s.opRequest(op, pathField, pathValue, key, body)
	if err != nil {
		return err
	}
	res, err := s.Store.Submit(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/entries/"+res.Entry.ID)
	writeResult(w, http.StatusCreated, OperationJSON{Entry: service.EntryView(res.Entry)}, res.Replay)
	return nil
}

// limitOf reads the limit parameter: 100 unless given, at most 1,000.
func limitOf(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, ledger.Invalid("limit", v, "must be a whole number from 1 to 1000")
	}
	return n, nil
}

// Page is what a list's answer holds beside its items (writePage writes it).
type Page struct {
	Next    string `json:"next"`
	HasMore bool   `json:"has_more"`
}

// writePage answers a list read with limit+1 items: at most limit of them, in their JSON
// form, under name; next, the cursor after the page (to pass as after=); and has_more,
// whether more items were there when the page was read.
func writePage[T, V any](w http.ResponseWriter, name string, items []T, limit int, view func(T) V, next func(page []T) string) error {
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	vs := make([]V, len(items))
	for i, it := range items {
		vs[i] = view(it)
	}
	list, err := json.Marshal(vs)
	if err != nil {
		return err
	}
	cursor, _ := json.Marshal(next(items))
	nm, _ := json.Marshal(name)
	body := fmt.Appendf(nil, "{%s:%s,\"next\":%s,\"has_more\":%t}\n", nm, list, cursor, more)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

func (s *Server) listContracts(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	var after contractCursor
	if err := decodeCursor(r.URL.Query().Get("after"), "c", &after); err != nil {
		return err
	}
	sts, err := s.Store.ContractsPage(r.Context(), after.Code, limit+1, tok.Contracts)
	if err != nil {
		return err
	}
	return writePage(w, "contracts", sts, limit, service.ContractView, func(page []ledger.ContractState) string {
		if len(page) > 0 {
			after.Code = page[len(page)-1].Contract.Code
		}
		return encodeCursor("c", after)
	})
}

func (s *Server) getContract(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	code := r.PathValue("code")
	if err := covers(tok, code); err != nil {
		return err
	}
	st, err := s.Store.Contract(r.Context(), code)
	if err != nil {
		return err
	}
	writeJSONStatus(w, http.StatusOK, "application/json", service.ContractView(st))
	return nil
}

func (s *Server) contractEntries(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	code := r.PathValue("code")
	if err := covers(tok, code); err != nil {
		return err
	}
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	var after entryCursor
	if err := decodeCursor(r.URL.Query().Get("after"), "e", &after); err != nil {
		return err
	}
	es, err := s.Store.EntriesPage(r.Context(), code, after.Seq, limit+1)
	if err != nil {
		return err
	}
	return writePage(w, "entries", es, limit, service.EntryView, func(page []ledger.Entry) string {
		if len(page) > 0 {
			after.Seq = page[len(page)-1].Seq
		}
		return encodeCursor("e", after)
	})
}

// feed is the whole journal, book by book, each in chain order; its cursor holds how far
// each book was read, so entries written while a client pages are neither repeated nor
// skipped.
func (s *Server) feed(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	pos, err := decodeFeedCursor(r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	es, err := s.Store.Feed(r.Context(), pos, limit+1, tok.Contracts)
	if err != nil {
		return err
	}
	view := func(e store.FeedEntry) service.EntryJSON { return service.EntryView(e.Entry) }
	return writePage(w, "entries", es, limit, view, func(page []store.FeedEntry) string {
		seen := map[int64]int64{}
		for _, p := range pos {
			seen[p.Book] = p.Seq
		}
		for _, e := range page {
			seen[e.BookID] = max(seen[e.BookID], e.Seq)
		}
		return encodeFeedCursor(seen)
	})
}

func (s *Server) getEntry(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	e, err := s.Store.Entry(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := covers(tok, e.Book); err != nil {
		return err
	}
	writeJSONStatus(w, http.StatusOK, "application/json", service.EntryView(e))
	return nil
}

func (s *Server) serials(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	code := r.PathValue("code")
	if err := covers(tok, code); err != nil {
		return err
	}
	if _, err := s.Store.Contract(r.Context(), code); err != nil {
		return err
	}
	bs, err := s.Store.SerialBlocks(r.Context(), code)
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []store.SerialBlock{}
	}
	writeJSONStatus(w, http.StatusOK, "application/json", map[string]any{"blocks": bs})
	return nil
}

// formatOf reads the format parameter among choices; the first is the default.
func formatOf(r *http.Request, choices ...string) (string, error) {
	f := r.URL.Query().Get("format")
	if f == "" {
		return choices[0], nil
	}
	for _, c := range choices {
		if f == c {
			return f, nil
		}
	}
	return "", ledger.Invalid("format", f, "is not one of "+strings.Join(choices, ", "))
}

var contentTypes = map[string]string{
	"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8",
	"hledger": "text/plain; charset=utf-8", "beancount": "text/plain; charset=utf-8", "postings": "text/csv; charset=utf-8",
}

// report renders a report; its parameters are the CLI's flags in snake_case.
func (s *Server) report(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	kind := r.PathValue("kind")
	format, err := formatOf(r, "json", "csv", "html")
	if err != nil {
		return err
	}
	fields := map[string]string{}
	for name, vs := range r.URL.Query() {
		if name != "format" && len(vs) > 0 {
			fields[name] = vs[len(vs)-1]
		}
	}
	p, err := service.ParseReport(kind, fields, ledger.Date(s.Now().UTC().Date()))
	if err != nil {
		return err
	}
	if tok.Contracts != nil {
		if kind != "term" || p.Query.Contract == "" {
			return unscoped(tok, "this report without contract=")
		}
		if err := covers(tok, p.Query.Contract); err != nil {
			return err
		}
	}
	rep, err := service.BuildReport(r.Context(), s.reads(), p)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := reports.Render(&buf, rep, format); err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentTypes[format])
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	if err := unscoped(tok, "the audit"); err != nil {
		return err
	}
	out, _, err := service.Audit(r.Context(), s.reads(), nil, nil)
	if err != nil {
		return err
	}
	writeJSONStatus(w, http.StatusOK, "application/json", out)
	return nil
}

// postStatement audits the books and answers a statement of them (signed when the server has
// a signing key), kept under the request's key.
func (s *Server) postStatement(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	if err := unscoped(tok, "an audit statement"); err != nil {
		return err
	}
	body, err := readBody(w, r, s.MaxBody, true)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil || m == nil || len(m) > 0 {
			return ledger.Invalid("body", "", "takes no fields; send {} or nothing")
		}
	}
	return s.kept(w, r, tok, body, func(ctx context.Context) (int, any, error) {
		_, res, err := service.Audit(ctx, s.Store, nil, nil)
		if err != nil {
			return 0, nil, err
		}
		st := service.Statement(res)
		if s.SigningKey != nil {
			if err := st.Sign(s.SigningKey); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusCreated, st, nil
	})
}

// kept runs a write whose answer is not an entry under its Idempotency-Key: the first time
// it runs and keeps the answer; after that it replays it; the same key with another request
// (method, path and body) is refused.
func (s *Server) kept(w http.ResponseWriter, r *http.Request, tok store.Token, body []byte, run func(ctx context.Context) (int, any, error)) error {
	key, done, err := s.idempotencyKey(r)
	if err != nil {
		return err
	}
	defer done()
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.Path)
	h.Write(body)
	digest := h.Sum(nil)
	prior, found, err := s.Store.KeptResponseFor(r.Context(), key)
	if err != nil {
		return err
	}
	if !found {
		// A key an entry of the journal holds was another request's.
		if taken, err := s.Store.KeyTaken(r.Context(), key); err != nil {
			return err
		} else if taken {
			return keyReused(key)
		}
		status, v, err := run(r.Context())
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var first bool
		prior, first, err = s.Store.KeepResponse(r.Context(), store.KeptResponse{Key: key, Route: r.Pattern, Token: tok.Name, Request: digest, Status: status, Body: append(b, '\n')})
		if err != nil {
			return err
		}
		found = !first
	}
	if found && !bytes.Equal(prior.Request, digest) {
		return keyReused(key)
	}
	if found {
		w.Header().Set("Idempotency-Replayed", "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(prior.Status)
	w.Write(prior.Body)
	return nil
}

// export writes the journal in one of the export formats; from and to (YYYY-MM-DD) narrow
// the ledger formats to a period.
func (s *Server) export(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	if err := unscoped(tok, "the export"); err != nil {
		return err
	}
	format, err := formatOf(r, export.Formats...)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "" {
		return ledger.Required("format", "is required ("+strings.Join(export.Formats, ", ")+")")
	}
	var from, to time.Time
	if v := r.URL.Query().Get("from"); v != "" {
		if from, err = ledger.ParseDate("from", v); err != nil {
			return err
		}
	}
	if v := r.URL.Query().Get("to"); v != "" {
		if to, err = ledger.ParseDate("to", v); err != nil {
			return err
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return ledger.Invalid("to", r.URL.Query().Get("to"), "is before from")
	}
	if format == "csv" && (!from.IsZero() || !to.IsZero()) {
		field := "from"
		if from.IsZero() {
			field = "to"
		}
		return ledger.Invalid(field, r.URL.Query().Get(field), export.ErrOperationsPeriod.Error())
	}
	// Streamed: a whole ledger's export does not fit a buffer. A failure before the first
	// byte is a problem; after it, the connection is cut, so a client never takes a
	// truncated export for a whole one.
	w.Header().Set("Content-Type", contentTypes[format])
	sw := &startedWriter{w: w}
	if err := export.Write(r.Context(), s.reads(), sw, format, from, to); err != nil {
		if !sw.started {
			w.Header().Del("Content-Type")
			return err
		}
		s.Log.ErrorContext(r.Context(), "export failed mid-way; connection cut", "error", err.Error())
		panic(http.ErrAbortHandler)
	}
	return nil
}

type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(b []byte) (int, error) {
	s.started = true
	return s.w.Write(b)
}
