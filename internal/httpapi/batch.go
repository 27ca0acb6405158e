package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// MaxBatch bounds the operations of one batch (a larger load is an import).
const MaxBatch = 1000

// BatchJSON is a batch's answer: one result per operation, in the request's order.
type BatchJSON struct {
	Atomic  bool              `json:"atomic"`
	Results []BatchResultJSON `json:"results"`
}

// BatchResultJSON is one operation's outcome: its entry (201, or 200 when its key already
// held it), or the problem that refused it.
type BatchResultJSON struct {
	Index   int                `json:"index"`
	Status  int                `json:"status"`
	Entry   *service.EntryJSON `json:"entry,omitempty"`
	Problem *Problem           `json:"problem,omitempty"`
}

// postBatch records many operations: atomically (the default: all are recorded, or none and
// every refusal is listed) through the import's batched write path, or one by one
// ("atomic": false) with a result per operation. An operation's key is its own "key", else
// the request's Idempotency-Key and its index ("KEY#3"). The answer is kept under the key.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, tok store.Token) error {
	body, err := readBody(w, r, s.MaxBatchBody, false)
	if err != nil {
		return err
	}
	atomic, ops, err := parseBatch(body)
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxKey-len("#999") {
		return keyTooLong(maxKey - len("#999"))
	}
	// Every operation is parsed, and the token's right to each checked, before anything runs
	// or a kept answer is replayed: a retry is authorised as the first request was.
	reqs := make([]ledger.Request, len(ops))
	results := make([]BatchResultJSON, len(ops))
	refused := false
	for i, raw := range ops {
		results[i].Index = i
		req, err := s.batchOp(r.Context(), tok, raw, fmt.Sprintf("%s#%d", key, i))
		if err != nil {
			p, known := problemOf(err)
			if !known {
				return err
			}
			if p.Status == http.StatusForbidden {
				p.Detail = fmt.Sprintf("operation %d: %s", i, p.Detail)
				return p
			}
			results[i].Status, results[i].Problem, refused = p.Status, p, true
			continue
		}
		reqs[i] = req
	}
	return s.kept(w, r, tok, body, func(ctx context.Context) (int, any, error) {
		if atomic {
			if refused {
				return 0, nil, batchProblem(results)
			}
			return s.atomicBatch(ctx, reqs, results)
		}
		for i, req := range reqs {
			if req == nil {
				continue
			}
			res, err := s.Store.Submit(ctx, req)
			if err != nil {
				p, known := problemOf(err)
				if !known {
					return 0, nil, err
				}
				results[i].Status, results[i].Problem = p.Status, p
				continue
			}
			v := service.EntryView(res.Entry)
			results[i].Status, results[i].Entry = http.StatusCreated, &v
			if res.Replay {
				results[i].Status = http.StatusOK
			}
		}
		return http.StatusOK, BatchJSON{Atomic: false, Results: results}, nil
	})
}

// parseBatch reads a batch's body: whether it is atomic (unless said otherwise), and its 1 to
// MaxBatch operations, each as its JSON.
func parseBatch(body []byte) (atomic bool, ops []json.RawMessage, err error) {
	var in struct {
		Atomic     *bool             `json:"atomic"`
		Operations []json.RawMessage `json:"operations"`
	}
	if err := ledger.ExactMembers(body, in, "batch"); err != nil {
		return false, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return false, nil, ledger.Invalid("body", "", "is not a batch: {\"atomic\": true|false, \"operations\": [{\"op\": \"deliver\", ...}, ...]} ("+err.Error()+")")
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, nil, ledger.Invalid("body", "", "has content after the batch object; give exactly one JSON object")
	}
	switch {
	case len(in.Operations) == 0:
		return false, nil, ledger.Required("operations", "is required: a list of 1 to "+strconv.Itoa(MaxBatch)+" operations")
	case len(in.Operations) > MaxBatch:
		return false, nil, ledger.Invalid("operations", strconv.Itoa(len(in.Operations)), fmt.Sprintf("holds more than %d operations; use carbonledger import for larger loads", MaxBatch))
	}
	return in.Atomic == nil || *in.Atomic, in.Operations, nil
}

// batchRequest parses one operation of a batch, under its own key or else key, and applies
// the rules that need the clock. It needs no database.
func (s *Server) batchRequest(raw json.RawMessage, key string) (ledger.Request, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, ledger.Invalid("operation", "", "is not a JSON object with an op and its fields")
	}
	if name, ok := ledger.RepeatedMember(raw); ok { // the map kept only the last
		return nil, ledger.Invalid(name, "", "appears more than once")
	}
	if own, ok := m["key"]; !ok || string(own) == "null" || string(own) == `""` { // no key of its own
		m["key"], _ = json.Marshal(key)
	}
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

// batchOp parses one operation of a batch and checks the token may do it.
func (s *Server) batchOp(ctx context.Context, tok store.Token, raw json.RawMessage, key string) (ledger.Request, error) {
	req, err := s.batchRequest(raw, key)
	if err != nil {
		return nil, err
	}
	need := "recorder"
	if req.Op() == ledger.OpAmend {
		need = "admin"
	}
	if !tok.Can(need) {
		return nil, newProblem("forbidden", fmt.Sprintf("token %s is a %s; %s needs the %s role", tok.Name, tok.Role, req.Op(), need))
	}
	code := req.ContractCode()
	if rv, ok := req.(ledger.RevertRequest); ok {
		if code, err = s.Store.EntryBook(ctx, rv.Entry); err != nil {
			return nil, err
		}
	}
	return req, covers(tok, code)
}

// atomicBatch records every request in one transaction through the import's write path,
// trying again (up to three times) when it lost a race to a concurrent writer.
func (s *Server) atomicBatch(ctx context.Context, reqs []ledger.Request, results []BatchResultJSON) (int, any, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var present []bool
		present, err = s.applyAll(ctx, reqs, results)
		if err == nil {
			keys := make([]string, len(reqs))
			for i, req := range reqs {
				keys[i] = req.IdempotencyKey()
			}
			es, err := s.Store.EntriesByKeys(ctx, keys)
			if err != nil {
				return 0, nil, err
			}
			for i, k := range keys {
				e, ok := es[k]
				if !ok {
					return 0, nil, fmt.Errorf("batch: the entry of key %s is missing after commit", k)
				}
				v := service.EntryView(e)
				results[i].Status, results[i].Entry = http.StatusCreated, &v
				if present[i] {
					results[i].Status = http.StatusOK
				}
			}
			return http.StatusCreated, BatchJSON{Atomic: true, Results: results}, nil
		}
		var p *Problem
		if errors.As(err, &p) || !store.Retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return 0, nil, err
}

// applyAll applies the requests in one import transaction and commits; any refusal rolls
// everything back and comes back as one problem listing each.
func (s *Server) applyAll(ctx context.Context, reqs []ledger.Request, results []BatchResultJSON) ([]bool, error) {
	im, err := s.Store.BeginImport(ctx)
	if err != nil {
		return nil, err
	}
	defer im.Rollback()
	present := make([]bool, len(reqs))
	refused := false
	for i, req := range reqs {
		out, err := im.Apply(ctx, req)
		if err != nil {
			if errors.Is(err, store.ErrBatchRefused) || store.Retryable(err) {
				return nil, err
			}
			p, known := problemOf(err)
			if !known {
				return nil, err
			}
			results[i].Status, results[i].Problem, refused = p.Status, p, true
			continue
		}
		present[i] = out == store.Present
	}
	if refused {
		return nil, batchProblem(results)
	}
	return present, im.Commit(ctx)
}

// batchProblem is an atomic batch's refusal: every refused operation, by index; the status
// is the refusals' own when they share one, else 400.
func batchProblem(results []BatchResultJSON) *Problem {
	var p *Problem
	n := 0
	for _, r := range results {
		if r.Problem == nil {
			continue
		}
		n++
		if p == nil {
			p = newProblem(kindOf(r.Problem), "")
		} else if r.Problem.Status != p.Status {
			p = &Problem{Type: ProblemTypePrefix + "invalid", Title: kinds["invalid"].title, Status: http.StatusBadRequest, Errors: p.Errors}
		}
		idx := r.Index
		if len(r.Problem.Errors) > 0 {
			for _, e := range r.Problem.Errors {
				e.Index = &idx
				p.Errors = append(p.Errors, e)
			}
		} else {
			p.Errors = append(p.Errors, ProblemField{Index: &idx, Field: r.Problem.Field, Value: r.Problem.Value, Rule: orDetail(r.Problem)})
		}
	}
	p.Detail = fmt.Sprintf("%d of %d operations were refused; nothing was recorded", n, len(results))
	return p
}

func kindOf(p *Problem) string {
	return p.Type[len(ProblemTypePrefix):]
}

func orDetail(p *Problem) string {
	if p.Rule != "" {
		return p.Rule
	}
	return p.Detail
}
