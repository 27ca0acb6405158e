package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// Problem is an error answer (RFC 9457, application/problem+json). Type is stable per kind
// of error, so clients branch on it, never on the text. Field, Value and Rule say which
// input broke which rule; Errors lists every one when a request broke several.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Field  string         `json:"field,omitempty"`
	Value  string         `json:"value,omitempty"`
	Rule   string         `json:"rule,omitempty"`
	Errors []ProblemField `json:"errors,omitempty"`
}

// ProblemField is one input's broken rule; Index is the operation's place in a batch.
type ProblemField struct {
	Index *int   `json:"index,omitempty"`
	Field string `json:"field"`
	Value string `json:"value,omitempty"`
	Rule  string `json:"rule"`
}

// The kinds of problem: their type URIs, titles and statuses. The list is the API's
// contract (the OpenAPI document names each type).
var kinds = map[string]struct {
	title  string
	status int
}{
	"invalid":                {"The request breaks a rule", http.StatusBadRequest},
	"not-found":              {"Not found", http.StatusNotFound},
	"conflict":               {"The request contradicts what the ledger holds", http.StatusConflict},
	"insufficient":           {"Not enough tonnes in the account", http.StatusConflict},
	"immutable":              {"History does not change", http.StatusConflict},
	"unauthorized":           {"A valid token is required", http.StatusUnauthorized},
	"forbidden":              {"The token may not do this", http.StatusForbidden},
	"idempotency-key-needed": {"An Idempotency-Key header is required", http.StatusBadRequest},
	"idempotency-key-reused": {"The Idempotency-Key was used for another request", http.StatusUnprocessableEntity},
	"request-in-progress":    {"A request with this Idempotency-Key is still running", http.StatusConflict},
	"too-large":              {"The body is too large", http.StatusRequestEntityTooLarge},
	"unsupported-media-type": {"The body must be application/json", http.StatusUnsupportedMediaType},
	"method-not-allowed":     {"Method not allowed", http.StatusMethodNotAllowed},
	"unavailable":            {"The database is unavailable", http.StatusServiceUnavailable},
	"internal":               {"Internal error", http.StatusInternalServerError},
}

// ProblemTypePrefix starts every problem's type URI.
const ProblemTypePrefix = "urn:carbonledger:problem:"

func newProblem(kind, detail string) *Problem {
	k, ok := kinds[kind]
	if !ok {
		kind, k = "internal", kinds["internal"]
	}
	return &Problem{Type: ProblemTypePrefix + kind, Title: k.title, Status: k.status, Detail: detail}
}

func (p *Problem) Error() string { return p.Detail }

// problemOf maps an error of the ledger or the store onto a problem, by its sentinel (never
// by its text). Anything else is an internal error: the caller logs it.
func problemOf(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) {
		return p, true
	}
	kind := ""
	switch {
	case errors.Is(err, store.ErrUnavailable):
		// The driver's words may name the database's host: they go to the log only.
		return newProblem("unavailable", "the database is unavailable; try again"), true
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrTimeout):
		return newProblem("unavailable", err.Error()), true
	case errors.Is(err, ledger.ErrNotFound):
		kind = "not-found"
	case errors.Is(err, ledger.ErrInsufficient):
		kind = "insufficient"
	case errors.Is(err, ledger.ErrImmutable):
		kind = "immutable"
	case errors.Is(err, ledger.ErrConflict):
		kind = "conflict"
	case errors.Is(err, ledger.ErrInvalid):
		kind = "invalid"
	default:
		return newProblem("internal", "internal error"), false
	}
	var fes ledger.FieldErrors
	var fe *ledger.FieldError
	switch {
	case errors.As(err, &fes) && len(fes) == 1:
		fe = fes[0]
	case errors.As(err, &fes):
		p := newProblem(kind, err.Error())
		for _, e := range fes {
			p.Errors = append(p.Errors, ProblemField{Field: e.Field, Value: e.Value, Rule: e.Rule})
		}
		return p, true
	case errors.As(err, &fe):
	}
	if fe != nil && fe.Field == "key" && errors.Is(fe, ledger.ErrConflict) {
		kind = "idempotency-key-reused"
	}
	p = newProblem(kind, err.Error())
	if fe != nil {
		p.Field, p.Value, p.Rule = fe.Field, fe.Value, fe.Rule
	}
	return p, true
}

// writeProblem answers with err as a problem. An error that is no problem of the request's is
// logged once, with the request's id, and answered as a plain internal error.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p, known := problemOf(err)
	if !known && isUnavailable(err) {
		p, known = newProblem("unavailable", "the database is unavailable; try again"), true
	}
	// Past the request's limit, whatever failed failed for that (a cancelled statement, a
	// transaction closed under it): say so.
	if d, late := s.timedOut(r); late && (!known || p.Status == http.StatusServiceUnavailable) {
		p, known = newProblem("unavailable", fmt.Sprintf("the request took longer than the server's limit of %s and was cancelled; "+
			"retry (a write with the same Idempotency-Key answers what was recorded, or records it now)", d)), true
	}
	switch {
	case !known:
		s.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", logPath(r), "error", err.Error())
	case p.Status == http.StatusServiceUnavailable:
		s.Log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", logPath(r), "error", err.Error())
		w.Header().Set("Retry-After", "1")
	case p.Status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="carbonledger"`)
	}
	writeJSONStatus(w, p.Status, "application/problem+json", p)
}

func writeJSONStatus(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode a response", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
