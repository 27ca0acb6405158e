package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// The bodies below are parsed by the server's own functions without a database: the clock is
// the tests' today, and nothing reaches the store.

func fuzzServer() *Server {
	return &Server{Now: func() time.Time { return today }, FutureTolerance: 24 * time.Hour}
}

var errNotAnObject = errors.New("not a JSON object")

// withMembers returns the JSON object body with the members pre written in first, as text:
// what a client would have sent had it put them in the body itself.
func withMembers(body []byte, pre string) ([]byte, bool) {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	sep := ","
	if rest := bytes.TrimLeft(b[1:], " \t\r\n"); len(rest) > 0 && rest[0] == '}' {
		sep = ""
	}
	return append([]byte("{"+pre+sep), b[1:]...), true
}

// directly parses an operation's JSON as the ledger reads it, and applies the clock's rules as
// the server does: the reference each body parser is held to.
func directly(s *Server, b []byte, ok bool) (ledger.Request, error) {
	if !ok {
		return nil, errNotAnObject
	}
	req, err := ledger.ParseOperationJSON(b)
	if err == nil {
		err = req.Check(s.Now(), s.FutureTolerance)
	}
	return req, err
}

func jsonText(s string) string { b, _ := json.Marshal(s); return string(b) }

// checkProblem asserts that a refused body is answered as a client's mistake (400) that names
// the field (or, when several, each field) at fault.
func checkProblem(t *testing.T, what string, err error) {
	t.Helper()
	p, known := problemOf(err)
	if !known || p.Status != http.StatusBadRequest || p.Detail == "" || (p.Field == "" && len(p.Errors) == 0) {
		t.Fatalf("%s: refused with %v (%T), answered %+v; want a 400 problem naming a field", what, err, err, p)
	}
	for _, e := range p.Errors {
		if e.Field == "" || e.Rule == "" {
			t.Fatalf("%s: problem %+v lists an error naming no field or rule", what, p)
		}
	}
}

// checkRequest asserts what an accepted operation must satisfy: the operation asked for, its
// key, and a JSON form that reads back as the same request.
func checkRequest(t *testing.T, what string, req ledger.Request, op ledger.Op, key string) {
	t.Helper()
	if req.Op() != op || req.IdempotencyKey() != key {
		t.Fatalf("%s: accepted as %s under key %q, want %s under key %q", what, req.Op(), req.IdempotencyKey(), op, key)
	}
	b, _ := json.Marshal(req)
	back, err := ledger.ParseOperationJSON(b)
	if err != nil || !maps.Equal(back.Fields(), req.Fields()) {
		t.Fatalf("%s: the request's JSON form %s reads back as %v, %v", what, b, back, err)
	}
}

// FuzzOperationBody: the body of POST /v1/contracts/{code}/{operation} (and of a revert,
// under /v1/entries/{id}) holds the operation's fields, the path its contract (or entry) and
// the Idempotency-Key header its key. Whatever the body, the server answers a refusal as a
// 400 problem naming the field, or accepts, under the key as sent, the very request the
// ledger reads from the body with the path and key written into it: the API neither loses
// nor adds nor rewrites a member on the way.
func FuzzOperationBody(f *testing.F) {
	for _, s := range []struct {
		op        uint8 // index in ledger.Ops
		path, key string
		body      string
	}{
		{0, "C1", "k1", `{"tonnes":"300.000","date":"2025-03-01","vintage":2024,"serials":"CAR-1-US-1335-31-983-KS-2025-9205-1 to 300","allow_late":true,"price_per_tonne":"120.5","note":"n","registry_tx":"TX"}`},
		{0, "C1", "k1", `{"tonnes":"5000","date":"2025-03-01"}`},
		{0, "C1", "k1", `{"tonnes":12.5,"date":"2025-01-01"}`},
		{0, "C1", "k1", `{"tonnes":"1","date":"2026-06-17"}`},
		{0, "C1", "k1", `{"op":"deliver","tonnes":"1","date":"2025-03-01"}`},
		{0, "C1", "k1", `{"contract":"C2","tonnes":"1","date":"2025-03-01"}`},
		{0, "C1", "k1", `{"key":"k2","tonnes":"1","date":"2025-03-01"}`},
		{0, " C1 ", "", `{"tonnes":"1","date":"2025-03-01"}`},
		{1, "C1", "k1", `{"tonnes":"5","date":"2025-03-01","beneficiary":"B","reason":"r","claim":"FY2025","serials":"PURO:11-15"}`},
		{2, "C1", "k1", `{"date":"2025-03-01","reason":"r","terminate":true}`},
		{3, "C1", "k1", `{"tonnes":"5","date":"2025-01-01","reason":"fire","remedy":"buffer"}`},
		{4, "C1", "k1", `{"date":"2025-03-01","reason":"r","schedule":[{"year":1,"tonnes":"900"}]}`},
		{4, "C1", "k1", `{"tonnes":"900","date":"2025-03-01","reason":"x"}`},
		{5, "0190c3a2-0000-7000-8000-000000000000", "k1", `{"reason":"typo","date":"2025-04-01"}`},
		{5, "key:k0", "k1", `{"reason":"typo"}`},
		{5, "nope", "k1", `{"reason":"typo"}`},
		{0, "C1", "k1", `{}`}, {0, "C1", "k1", ` { } `}, {0, "C1", "k1", `null`}, {0, "C1", "k1", `[]`},
		{0, "C1", "k1", `{"tonnes":"1"} {}`}, {0, "C1", "k1", `{"":0}`}, {0, "C1", "k1", ``},
	} {
		f.Add(s.op, s.path, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, opN uint8, path, key string, body []byte) {
		op := ledger.Ops[int(opN)%len(ledger.Ops)]
		pathField := "contract"
		if op == ledger.OpRevert {
			pathField = "entry"
		}
		if err := checkIdempotencyKey(key); err != nil {
			// The handler stops here, before it reads the body.
			if p, known := problemOf(err); !known || p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("Idempotency-Key %q: refused with %v, answered %+v; want a 400 problem", key, err, p)
			}
			return
		}
		s := fuzzServer()
		req, err := s.opRequest(op, pathField, path, key, body)
		pre := `"op":` + jsonText(string(op)) + `,` + jsonText(pathField) + `:` + jsonText(path) + `,"key":` + jsonText(key)
		ref, ok := withMembers(body, pre)
		want, werr := directly(s, ref, ok)
		what := fmt.Sprintf("POST %s %q with key %q and body %q", op, path, key, body)
		if err != nil {
			checkProblem(t, what, err)
			if werr == nil {
				t.Fatalf("%s: refused (%v), though the ledger reads the body with its path and key as %v", what, err, want)
			}
			return
		}
		checkRequest(t, what, req, op, key)
		if werr != nil {
			t.Fatalf("%s: accepted as %v, though the ledger refuses the body with its path and key: %v", what, req, werr)
		}
		if !maps.Equal(want.Fields(), req.Fields()) {
			t.Fatalf("%s: accepted as %v, want %v", what, req.Fields(), want.Fields())
		}
	})
}

// FuzzBatchBody: the body of POST /v1/batches is one JSON object, {"atomic": ..., "operations":
// [...]}, of 1 to MaxBatch operations, each the JSON the ledger reads, under its own key or
// else the request's key and its index. Whatever the body, a refusal of the batch or of one
// operation is a 400 problem naming a field; an accepted batch is exactly one JSON value; and
// each accepted operation is the very request the ledger reads from it, under its key.
func FuzzBatchBody(f *testing.F) {
	for _, s := range []string{
		`{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01"}]}`,
		`{"operations":[
			{"op":"deliver","contract":"C1","tonnes":"10","date":"2025-03-01"},
			{"op":"retire","contract":"C1","tonnes":"4","date":"2025-03-02","beneficiary":"B","reason":"r"},
			{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-03","key":"own-key"}]}`,
		`{"atomic":false,"operations":[
			{"op":"deliver","contract":"C1","tonnes":"2","date":"2025-03-04"},
			{"op":"retire","contract":"C1","tonnes":"500","date":"2025-03-05","beneficiary":"B","reason":"r"},
			{"op":"deliver","contract":"NOPE","tonnes":"1","date":"2025-03-04"},
			{"op":"deliver","contract":"C1","tonnes":"x","date":"2025-03-01"}]}`,
		`{"atomic":true,"operations":[{"op":"amend","contract":"C1","tonnes":"900","date":"2025-03-01","reason":"x"},
			{"op":"revert","entry":"key:own-key","reason":"typo"},{"op":"cancel","contract":"C1","date":"2025-03-01","reason":"r","terminate":true}]}`,
		`{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-03-01","key":5}]}`,
		`{"operations":[null,[],1,"x",{}]}`,
		`{"operations":[]}`, `{"ops":[]}`, `{"atomic":"false","operations":[{}]}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		atomic, ops, err := parseBatch(body)
		what := fmt.Sprintf("batch %q", body)
		if err != nil {
			checkProblem(t, what, err)
			return
		}
		if len(ops) == 0 || len(ops) > MaxBatch {
			t.Fatalf("%s: accepted with %d operations", what, len(ops))
		}
		if !json.Valid(body) {
			t.Fatalf("%s: accepted (atomic %v, %d operations), though the body is not one JSON value", what, atomic, len(ops))
		}
		s := fuzzServer()
		for i, raw := range ops {
			key := fmt.Sprintf("b1#%d", i)
			what := fmt.Sprintf("%s, operation %d", what, i)
			req, err := s.batchRequest(raw, key)
			// An operation's key is its own when it gives one, else the batch's and its index.
			var m map[string]json.RawMessage
			var own string
			if json.Unmarshal(raw, &m) == nil && json.Unmarshal(m["key"], &own) == nil && own != "" {
				key = own
			}
			pre := ""
			if _, ok := m["key"]; !ok {
				pre = `"key":` + jsonText(key)
			}
			ref, ok := []byte(raw), true
			if pre != "" {
				ref, ok = withMembers(raw, pre)
			}
			want, werr := directly(s, ref, ok)
			if err != nil {
				checkProblem(t, what, err)
				if werr == nil {
					t.Fatalf("%s: refused (%v), though the ledger reads it as %v", what, err, want)
				}
				continue
			}
			if werr != nil {
				t.Fatalf("%s: accepted as %v, though the ledger refuses it: %v", what, req, werr)
			}
			checkRequest(t, what, req, want.Op(), key)
			got, wantFields := req.Fields(), want.Fields()
			delete(got, "key") // checked above: a key left null or empty is no key of its own
			delete(wantFields, "key")
			if !maps.Equal(wantFields, got) {
				t.Fatalf("%s: accepted as %v, want %v", what, got, wantFields)
			}
		}
	})
}

// TestBatchMembersExact: a batch's own members are named exactly and once ("AtomiC" is not
// "atomic"), as its operations' are.
func TestBatchMembersExact(t *testing.T) {
	for _, tt := range []struct{ body, field, rule string }{
		{`{"AtomiC": false, "operations": [{"op": "deliver"}]}`, "AtomiC", `member names are exact (write "atomic")`},
		{`{"atomic": false, "atomic": true, "operations": [{"op": "deliver"}]}`, "atomic", "is given twice"},
	} {
		_, _, err := parseBatch([]byte(tt.body))
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Rule, tt.rule) {
			t.Errorf("%s: got %v, want %s %s", tt.body, err, tt.field, tt.rule)
		}
	}
}
