package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/carbonledger/carbonledger/internal/pgtest"
	"github.com/carbonledger/carbonledger/internal/store"
)

// The OpenAPI document (openapi.json) is the API's contract. TestOpenAPIMatchesRoutes holds
// its operations to Routes(), TestOpenAPIDocument its structure to the conventions, and
// TestOpenAPIConformance calls every operation, with requests that succeed and requests that
// fail, and validates each answer against the schema the document gives for its status and
// media type.

// oaLocation is the URL the document is loaded under for schema validation.
const oaLocation = "mem://openapi.json"

// oaOperation is one operation of the document.
type oaOperation struct {
	Method, Path, ID string
	Op               map[string]any
	segments         []string
}

func (o oaOperation) String() string { return o.Method + " " + o.Path + " (" + o.ID + ")" }

// oaLoad parses the embedded document.
func oaLoad(t testing.TB) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(OpenAPI))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("openapi.json has content after its object")
	}
	return doc
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaOperations lists the document's operations, by path and method.
func oaOperations(t testing.TB, doc map[string]any) []oaOperation {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	var out []oaOperation
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("paths[%q] is not an object", path)
		}
		for key, v := range item {
			if !slices.Contains(oaMethods, key) {
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("paths[%q].%s is not an object", path, key)
			}
			id, _ := op["operationId"].(string)
			out = append(out, oaOperation{Method: strings.ToUpper(key), Path: path, ID: id, Op: op,
				segments: strings.Split(strings.TrimPrefix(path, "/"), "/")})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// oaToken escapes one JSON-pointer reference token (RFC 6901).
func oaToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// pointer is the JSON pointer of the tokens.
func oaPointer(tokens ...string) string {
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteString("/" + oaToken(tok))
	}
	return b.String()
}

// lookup follows a JSON pointer ("/a/b") in the document.
func oaLookup(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// deref follows a local $ref (an object {"$ref": "#/..."}), returning the target and its
// pointer; anything else is itself.
func oaDeref(doc, v any, ptr string) (any, string, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return v, ptr, nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v, ptr, nil
		}
		target, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, "", fmt.Errorf("%s: $ref %q is not local", ptr, ref)
		}
		if v, ok = oaLookup(doc, target); !ok {
			return nil, "", fmt.Errorf("%s: $ref %q does not resolve", ptr, ref)
		}
		ptr = target
	}
	return nil, "", fmt.Errorf("%s: $ref chain too long", ptr)
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := oaLoad(t)
	documented := map[string]oaOperation{}
	for _, op := range oaOperations(t, doc) {
		documented[op.Method+" "+op.Path] = op
	}
	routes := map[string]Route{}
	for _, rt := range (&Server{}).Routes() {
		k := rt.Method + " " + rt.Path
		if _, dup := routes[k]; dup {
			t.Errorf("route %s is listed twice in Routes()", k)
		}
		routes[k] = rt
	}
	for k := range routes {
		if _, ok := documented[k]; !ok {
			t.Errorf("route %s has no operation in openapi.json", k)
		}
	}
	for k, op := range documented {
		if _, ok := routes[k]; !ok {
			t.Errorf("openapi.json documents %s, which no route serves", op)
		}
	}
	// Each route's security is its role: none, or a bearer token with the role.
	for k, rt := range routes {
		op, ok := documented[k]
		if !ok {
			continue
		}
		sec, ok := op.Op["security"].([]any)
		if !ok {
			t.Errorf("%s: no security list", op)
			continue
		}
		role, _ := op.Op["x-required-role"].(string)
		if rt.Role == "" {
			if len(sec) != 0 || role != "" {
				t.Errorf("%s needs no token; its security must be [] and it has no x-required-role (got %v, %q)", op, sec, role)
			}
			continue
		}
		if len(sec) != 1 {
			t.Errorf("%s needs a %s token; its security must be [{bearerAuth: []}] (got %v)", op, rt.Role, sec)
		} else if req, ok := sec[0].(map[string]any); !ok || len(req) != 1 || req["bearerAuth"] == nil {
			t.Errorf("%s needs a %s token; its security must be [{bearerAuth: []}] (got %v)", op, rt.Role, sec)
		}
		if role != rt.Role {
			t.Errorf("%s: x-required-role %q, but the route needs %q", op, role, rt.Role)
		}
	}
}

// TestOpenAPIDocument checks the document's structure: the conventions every operation
// follows, the problem kinds, and that every $ref resolves.
func TestOpenAPIDocument(t *testing.T) {
	doc := oaLoad(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v, want 3.1.0", doc["openapi"])
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] != "carbonledger" || info["version"] != "0.1.0" {
		t.Errorf("info title %v version %v, want carbonledger 0.1.0", info["title"], info["version"])
	}
	desc, _ := info["description"].(string)
	for _, want := range []string{"Idempotency-Key", "Idempotency-Replayed", "422", "409", "application/problem+json",
		"YYYY-MM-DD", "after", "limit", "1000"} {
		if !strings.Contains(desc, want) {
			t.Errorf("info.description does not mention %s", want)
		}
	}
	for kind := range kinds {
		if !strings.Contains(desc, ProblemTypePrefix+kind) {
			t.Errorf("info.description does not list the problem type %s%s", ProblemTypePrefix, kind)
		}
	}
	if s, ok := oaLookup(doc, "/components/securitySchemes/bearerAuth"); !ok {
		t.Error("no components.securitySchemes.bearerAuth")
	} else if m := s.(map[string]any); m["type"] != "http" || m["scheme"] != "bearer" {
		t.Errorf("bearerAuth is %v, want an http bearer scheme", m)
	}

	// Every $ref resolves.
	var walk func(v any, ptr string)
	walk = func(v any, ptr string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, _, err := oaDeref(doc, v, ptr); err != nil {
					t.Error(err)
				} else if !strings.HasPrefix(ref, "#/components/") {
					t.Errorf("%s: $ref %q is not under #/components/", ptr, ref)
				}
			}
			for k, e := range v {
				walk(e, ptr+"/"+oaToken(k))
			}
		case []any:
			for i, e := range v {
				walk(e, ptr+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "")

	// The problem kinds are problem.go's, each with its type, title and status.
	schemas, _ := oaLookup(doc, "/components/schemas")
	for name := range schemas.(map[string]any) {
		if kind, ok := strings.CutPrefix(name, "Problem-"); ok {
			if _, known := kinds[kind]; !known {
				t.Errorf("components.schemas.%s names no problem kind of problem.go", name)
			}
		}
	}
	for kind, k := range kinds {
		base := "/components/schemas/Problem-" + kind + "/properties"
		for field, want := range map[string]any{"type": ProblemTypePrefix + kind, "title": k.title, "status": json.Number(strconv.Itoa(k.status))} {
			got, ok := oaLookup(doc, base+"/"+field+"/const")
			if !ok || got != want {
				t.Errorf("problem kind %s: the document's %s is %v, problem.go's %v", kind, field, got, want)
			}
		}
	}

	ids := map[string]string{}
	for _, op := range oaOperations(t, doc) {
		ptr := oaPointer("paths", op.Path, strings.ToLower(op.Method))
		if op.ID == "" {
			t.Errorf("%s has no operationId", op)
		} else if prior, dup := ids[op.ID]; dup {
			t.Errorf("operationId %s is used by %s and %s", op.ID, prior, op)
		}
		ids[op.ID] = op.String()
		if s, _ := op.Op["summary"].(string); s == "" {
			t.Errorf("%s has no summary", op)
		}
		// Parameters: each path parameter declared; a required Idempotency-Key on every POST.
		params := map[string]map[string]any{}
		list, _ := op.Op["parameters"].([]any)
		for i, p := range list {
			v, _, err := oaDeref(doc, p, ptr+"/parameters/"+strconv.Itoa(i))
			if err != nil {
				t.Error(err)
				continue
			}
			m := v.(map[string]any)
			if m["schema"] == nil {
				t.Errorf("%s: parameter %v has no schema", op, m["name"])
			}
			params[fmt.Sprint(m["in"], ":", m["name"])] = m
		}
		for _, seg := range op.segments {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				if p := params["path:"+name]; p == nil || p["required"] != true {
					t.Errorf("%s: the path parameter %s is not declared (required)", op, name)
				}
			}
		}
		for k, p := range params {
			if in, name, _ := strings.Cut(k, ":"); in == "path" && !slices.Contains(op.segments, "{"+name+"}") {
				t.Errorf("%s: path parameter %s is not in the path", op, name)
			} else if in == "path" && p["required"] != true {
				t.Errorf("%s: path parameter %s must be required", op, name)
			}
		}
		key := params["header:Idempotency-Key"]
		switch {
		case op.Method == "POST" && (key == nil || key["required"] != true):
			t.Errorf("%s: a write needs a required Idempotency-Key header parameter", op)
		case op.Method != "POST" && key != nil:
			t.Errorf("%s: only writes take an Idempotency-Key", op)
		}
		if op.Method == "POST" {
			if _, ok := oaLookup(doc, ptr+oaPointer("requestBody", "content", "application/json", "schema")); !ok {
				t.Errorf("%s: a write needs an application/json request body schema", op)
			}
		}
		// Responses: a success with content; errors as problems with a $ref to a Problem schema.
		resps, _ := op.Op["responses"].(map[string]any)
		success := 0
		for status, v := range resps {
			code, err := strconv.Atoi(status)
			if err != nil || code < 200 || code > 599 {
				t.Errorf("%s: response %q is not a status code", op, status)
				continue
			}
			r, _ := v.(map[string]any)
			if d, _ := r["description"].(string); d == "" {
				t.Errorf("%s: response %s has no description", op, status)
			}
			content, _ := r["content"].(map[string]any)
			if len(content) == 0 {
				t.Errorf("%s: response %s has no content", op, status)
			}
			if code < 400 {
				success++
				for mt := range content {
					if _, ok := oaLookup(doc, ptr+oaPointer("responses", status, "content", mt, "schema")); !ok {
						t.Errorf("%s: response %s %s has no schema", op, status, mt)
					}
				}
				continue
			}
			if len(content) != 1 || content["application/problem+json"] == nil {
				t.Errorf("%s: error response %s must have application/problem+json content only", op, status)
				continue
			}
			schema, _ := content["application/problem+json"].(map[string]any)["schema"].(map[string]any)
			ref, _ := schema["$ref"].(string)
			target, _, err := oaDeref(doc, schema, ptr)
			if ref == "" || err != nil {
				t.Errorf("%s: error response %s must $ref a Problem schema", op, status)
				continue
			}
			if ref != "#/components/schemas/Problem" {
				allOf, _ := target.(map[string]any)["allOf"].([]any)
				if len(allOf) != 1 || allOf[0].(map[string]any)["$ref"] != "#/components/schemas/Problem" {
					t.Errorf("%s: error response %s: %s is not the Problem schema or a narrowing of it", op, status, ref)
				}
			}
			// The narrowed kinds must be of this status.
			types, _ := oaLookup(doc, strings.TrimPrefix(ref, "#")+"/properties/type/enum")
			tl, _ := types.([]any)
			for _, ty := range tl {
				kind := strings.TrimPrefix(ty.(string), ProblemTypePrefix)
				if kinds[kind].status != code {
					t.Errorf("%s: error response %s admits the problem kind %s, whose status is %d", op, status, kind, kinds[kind].status)
				}
			}
		}
		if success == 0 {
			t.Errorf("%s has no success response", op)
		}
		for _, code := range []string{"401", "500"} {
			if code == "401" && op.Op["x-required-role"] == nil {
				continue
			}
			if resps[code] == nil {
				t.Errorf("%s: response %s is not documented", op, code)
			}
		}
	}
}

// validator validates JSON values against the document's schemas, compiled with JSON Schema
// draft 2020-12 (OpenAPI 3.1's dialect) from the whole document.
type oaValidator struct {
	c     *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

func oaNewValidator(t testing.TB) *oaValidator {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(oaLocation, doc); err != nil {
		t.Fatal(err)
	}
	return &oaValidator{c: c, cache: map[string]*jsonschema.Schema{}}
}

// schema compiles the schema at the JSON pointer ptr of the document.
func (v *oaValidator) schema(ptr string) (*jsonschema.Schema, error) {
	if s, ok := v.cache[ptr]; ok {
		return s, nil
	}
	var loc strings.Builder
	loc.WriteString(oaLocation + "#")
	for _, tok := range strings.Split(ptr, "/")[1:] {
		loc.WriteString("/" + url.PathEscape(tok))
	}
	s, err := v.c.Compile(loc.String())
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", ptr, err)
	}
	v.cache[ptr] = s
	return s, nil
}

// validate validates the JSON text b against the schema at ptr.
func (v *oaValidator) validate(ptr string, b []byte) error {
	s, err := v.schema(ptr)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return s.Validate(inst)
}

// oaExchange is one request of the conformance test and what it must get.
type oaExchange struct {
	method, path string
	token        string // a token's name in testAPI.tokens, a raw secret, or "" for none
	key          string // the Idempotency-Key, "" for none
	body         string
	contentType  string // the body's Content-Type: application/json unless set ("-" for none)
	want         int    // the status it must get
	replay       bool   // the answer must be a replay (Idempotency-Replayed: true)
	badBody      bool   // the documented request schema must refuse the body too
}

// oaChecker sends requests, checks each answer against the document, and records which
// operations answered which statuses.
type oaChecker struct {
	doc    map[string]any
	ops    []oaOperation
	v      *oaValidator
	ta     *testAPI
	srv    *httptest.Server // where requests go
	seen   map[string]map[int]int
	checks *int
	sent   *int
	n      *int
}

// on returns the checker sending its requests to srv, sharing what it records.
func (c *oaChecker) on(srv *httptest.Server) *oaChecker {
	cc := *c
	cc.srv = srv
	return &cc
}

// key returns a new Idempotency-Key.
func (c *oaChecker) key(what string) string {
	*c.n++
	return fmt.Sprintf("%s-%d", what, *c.n)
}

// operation finds the documented operation that serves method and path.
func (c *oaChecker) operation(method, path string) (oaOperation, bool) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var found []oaOperation
	for _, op := range c.ops {
		if op.Method != method || len(op.segments) != len(segs) {
			continue
		}
		match := true
		for i, s := range op.segments {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				match = match && segs[i] != ""
			} else {
				match = match && s == segs[i]
			}
		}
		if match {
			found = append(found, op)
		}
	}
	if len(found) != 1 {
		return oaOperation{}, false
	}
	return found[0], true
}

func (c *oaChecker) check(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	*c.checks++
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}

// do sends x and checks the answer: its status is x.want and documented; its media type is
// documented for the status; a JSON body validates against the documented schema; the
// documented headers are there and valid. It returns the answer's headers and body.
func (c *oaChecker) do(t *testing.T, x oaExchange) (http.Header, []byte) {
	t.Helper()
	path, _, _ := strings.Cut(x.path, "?")
	op, ok := c.operation(x.method, path)
	if !ok {
		t.Fatalf("%s %s: no operation of the document serves it", x.method, x.path)
	}
	opPtr := oaPointer("paths", op.Path, strings.ToLower(op.Method))
	ct := x.contentType
	if ct == "" && x.body != "" {
		ct = "application/json"
	}
	if body := opPtr + oaPointer("requestBody", "content", "application/json", "schema"); x.body != "" && ct == "application/json" {
		if _, documented := oaLookup(c.doc, body); !documented {
			t.Errorf("%s sends a body, but the document has no request body for it", op)
		} else if err := c.v.validate(body, []byte(x.body)); x.badBody {
			c.check(t, err != nil, "%s: the documented request schema accepts the refused body %s", op, x.body)
		} else if x.want < 300 {
			c.check(t, err == nil, "%s: the documented request schema refuses the valid body %s:\n%v", op, x.body, err)
		}
	}

	var rd io.Reader
	if x.body != "" {
		rd = strings.NewReader(x.body)
	}
	req, err := http.NewRequest(x.method, c.srv.URL+x.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if x.token != "" {
		secret, ok := c.ta.tokens[x.token]
		if !ok {
			secret = x.token
		}
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if x.key != "" {
		req.Header.Set("Idempotency-Key", x.key)
	}
	if ct != "" && ct != "-" {
		req.Header.Set("Content-Type", ct)
	}
	*c.sent++
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	h := resp.Header
	if c.seen[op.ID] == nil {
		c.seen[op.ID] = map[int]int{}
	}
	c.seen[op.ID][resp.StatusCode]++
	short := string(b)
	if len(short) > 2000 {
		short = short[:2000] + "..."
	}
	c.check(t, resp.StatusCode == x.want, "%s %s: status %d, want %d: %s", x.method, x.path, resp.StatusCode, x.want, short)

	status := strconv.Itoa(resp.StatusCode)
	rPtr := opPtr + oaPointer("responses", status)
	r, documented := oaLookup(c.doc, rPtr)
	if !c.check(t, documented, "%s: status %d is not documented (%s)", op, resp.StatusCode, short) {
		return h, b
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if !c.check(t, err == nil, "%s %d: Content-Type %q: %v", op, resp.StatusCode, h.Get("Content-Type"), err) {
		return h, b
	}
	content, _ := r.(map[string]any)["content"].(map[string]any)
	if !c.check(t, content[mt] != nil, "%s %d: media type %s is not documented (documented: %v)", op, resp.StatusCode, mt, oaKeys(content)) {
		return h, b
	}
	if resp.StatusCode >= 400 {
		c.check(t, h.Get("Content-Type") == "application/problem+json", "%s %d: Content-Type %q, want application/problem+json", op, resp.StatusCode, h.Get("Content-Type"))
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		err := c.v.validate(rPtr+oaPointer("content", mt, "schema"), b)
		c.check(t, err == nil, "%s %d %s: the body does not match the documented schema:\n%v\nbody: %s", op, resp.StatusCode, mt, err, short)
	} else {
		c.check(t, len(b) > 0, "%s %d %s: empty body", op, resp.StatusCode, mt)
	}
	// Documented headers: present when required, valid when present.
	hs, _ := r.(map[string]any)["headers"].(map[string]any)
	for name, hv := range hs {
		target, hPtr, err := oaDeref(c.doc, hv, rPtr+oaPointer("headers", name))
		if err != nil {
			t.Error(err)
			continue
		}
		val := h.Get(name)
		if target.(map[string]any)["required"] == true {
			c.check(t, val != "", "%s %d: the required header %s is missing", op, resp.StatusCode, name)
		}
		if val != "" {
			q, _ := json.Marshal(val)
			err := c.v.validate(hPtr+"/schema", q)
			c.check(t, err == nil, "%s %d: header %s: %q does not match its schema: %v", op, resp.StatusCode, name, val, err)
		}
	}
	for name := range h {
		if strings.EqualFold(name, "Location") || strings.EqualFold(name, "Idempotency-Replayed") {
			_, ok := hs[http.CanonicalHeaderKey(name)]
			c.check(t, ok, "%s %d: header %s is sent but not documented", op, resp.StatusCode, name)
		}
	}
	if x.method == "POST" && resp.StatusCode < 300 {
		got := h.Get("Idempotency-Replayed") == "true"
		c.check(t, got == x.replay, "%s %d: Idempotency-Replayed %q, want a replay: %v", op, resp.StatusCode, h.Get("Idempotency-Replayed"), x.replay)
	}
	return h, b
}

// problemKind checks that the body is a problem of the kind.
func (c *oaChecker) problemKind(t *testing.T, b []byte, kind string) {
	t.Helper()
	var p Problem
	json.Unmarshal(b, &p)
	c.check(t, p.Type == ProblemTypePrefix+kind, "problem type %q, want %s%s: %s", p.Type, ProblemTypePrefix, kind, b)
}

func oaKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// member decodes a JSON body and returns the string at the path of member names.
func oaMember(t *testing.T, b []byte, names ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	for _, n := range names {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %s", names, b)
		}
		v = m[n]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("no string at %v in %s", names, b)
	}
	return s
}

// writeFailures sends the failures every write shares: no token (401), no Idempotency-Key
// (400), a body of another media type (415), a body over limit (413), and a key whose request
// is still running (409). body is a valid body for path.
func (c *oaChecker) writeFailures(t *testing.T, path, token, body string, limit int64) {
	t.Helper()
	_, b := c.do(t, oaExchange{method: "POST", path: path, key: c.key("w"), body: body, want: 401})
	c.problemKind(t, b, "unauthorized")
	_, b = c.do(t, oaExchange{method: "POST", path: path, token: "not-a-token", key: c.key("w"), body: body, want: 401})
	c.problemKind(t, b, "unauthorized")
	_, b = c.do(t, oaExchange{method: "POST", path: path, token: token, body: body, want: 400})
	c.problemKind(t, b, "idempotency-key-needed")
	_, b = c.do(t, oaExchange{method: "POST", path: path, token: token, key: c.key("w"), body: body, contentType: "text/plain", want: 415})
	c.problemKind(t, b, "unsupported-media-type")
	big := `{"note": "` + strings.Repeat("x", int(limit)) + `"}`
	_, b = c.do(t, oaExchange{method: "POST", path: path, token: token, key: c.key("w"), body: big, want: 413})
	c.problemKind(t, b, "too-large")
	busy := c.key("busy")
	c.ta.api.inflight.Store(busy, struct{}{})
	_, b = c.do(t, oaExchange{method: "POST", path: path, token: token, key: busy, body: body, want: 409})
	c.ta.api.inflight.Delete(busy)
	c.problemKind(t, b, "request-in-progress")
}

// readFailures sends the failures every authenticated read shares: no token, an unknown one.
func (c *oaChecker) readFailures(t *testing.T, path string) {
	t.Helper()
	_, b := c.do(t, oaExchange{method: "GET", path: path, want: 401})
	c.problemKind(t, b, "unauthorized")
	_, b = c.do(t, oaExchange{method: "GET", path: path, token: "not-a-token", want: 401})
	c.problemKind(t, b, "unauthorized")
}

// oaServer is another server over st, signing its statements with signingKey when set.
func oaServer(t *testing.T, st *store.Store, signingKey ed25519.PrivateKey) *httptest.Server {
	t.Helper()
	api := New(st, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	api.Now = func() time.Time { return today }
	api.SigningKey = signingKey
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenAPIConformance(t *testing.T) {
	start := time.Now()
	doc := oaLoad(t)
	ta := newAPI(t)
	c := &oaChecker{doc: doc, ops: oaOperations(t, doc), v: oaNewValidator(t), ta: ta, srv: ta.srv,
		seen: map[string]map[int]int{}, checks: new(int), sent: new(int), n: new(int)}
	ctx := context.Background()

	// A second server over the same store that signs its statements; a server over an empty
	// ledger (its tokens named empty-*); a server whose database is gone.
	_, signKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := oaServer(t, ta.store, signKey)
	emptyStore, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyStore.Close() })
	emptyStore.Now = func() time.Time { return today }
	for _, role := range store.Roles {
		if ta.tokens["empty-"+role], err = emptyStore.CreateToken(ctx, role, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	empty := oaServer(t, emptyStore, nil)
	goneStore, err := store.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	gone := oaServer(t, goneStore, nil)
	goneStore.Close()

	ta.contract("C1", `{"notes":"The first contract."}`)
	ta.contract("TERM", `{"durability_years":1000,"registry":"verra"}`)

	// What the steps share: ids and keys of entries recorded along the way.
	var (
		delivery1, delivery1Key, delivery2Key, deliveryForBatch string
		cancelC1, retireKey, revertID                           string
	)
	entryBody := func(b []byte) string { return oaMember(t, b, "entry", "id") }

	steps := []struct {
		op  string
		run func(t *testing.T)
	}{
		{"getHealth", func(t *testing.T) {
			c.do(t, oaExchange{method: "GET", path: "/healthz", want: 200})
		}},
		{"getReadiness", func(t *testing.T) {
			c.do(t, oaExchange{method: "GET", path: "/readyz", want: 200})
			_, b := c.on(gone).do(t, oaExchange{method: "GET", path: "/readyz", want: 503})
			c.problemKind(t, b, "unavailable")
		}},
		{"getOpenAPI", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/openapi.json", want: 200})
			c.check(t, bytes.Equal(b, OpenAPI), "GET /v1/openapi.json does not serve openapi.json")
		}},
		{"createContract", func(t *testing.T) {
			full := `{"code":"C2","buyer":"Acme Buyer","supplier":"Ocean Co","project":"Alkalinity 1","method":"ocean",
				"country":"JP","region":"Hokkaido","registry":"Isometric","standard":"Isometric OAE","durability_years":50,
				"term_start":"2025-01-01","term_end":"2027-06-30","signed_on":"2024-11-02","tonnes":"300.5",
				"price_per_tonne":"15000","currency":"JPY","delivery_mode":"transfer","over_delivery_tolerance":"5",
				"schedule":[{"year":1,"tonnes":"100","vintage":2025,"price_per_tonne":"14000","due_on":"2025-12-15"},
				{"year":2,"tonnes":"100.5"},{"year":3,"tonnes":"100","due_on":"2027-06-30"}],"notes":"Yen-priced."}`
			h, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: "contract-C2", body: full, want: 201})
			c.check(t, h.Get("Location") == "/v1/contracts/C2", "Location %q", h.Get("Location"))
			c.check(t, oaMember(t, b, "code") == "C2", "code %s", b)
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: "contract-C2", body: full, want: 201, replay: true})
			minimal := `{"code":"C3","buyer":"B","supplier":"S","project":"P","method":"DAC","country":"US",
				"term_start":"2025-01-01","term_end":"2025-12-31","signed_on":"2025-01-01","tonnes":"40","delivery_mode":"retire_on_delivery"}`
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: "contract-C3", body: minimal, want: 201})

			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "recorder", key: c.key("c"), body: minimal, want: 403})
			c.problemKind(t, b, "forbidden")
			other := strings.Replace(minimal, `"C3"`, `"C4"`, 1)
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "scoped", key: c.key("c"), body: other, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: c.key("c"),
				body: strings.Replace(other, `"40"`, `40`, 1), want: 400, badBody: true})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: c.key("c"),
				body: strings.Replace(other, `"code"`, `"colour":"red","code"`, 1), want: 400, badBody: true})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: c.key("c"),
				body: strings.Replace(other, `"US"`, `"USA"`, 1), want: 400, badBody: true})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: c.key("c"),
				body: strings.Replace(minimal, `"C3"`, `"C1"`, 1), want: 409})
			c.problemKind(t, b, "conflict")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts", token: "admin", key: "contract-C2", body: other, want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts", "admin", other, ta.api.MaxBody)
		}},
		{"listContracts", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts?limit=2", token: "viewer", want: 200})
			var page struct {
				Contracts []json.RawMessage `json:"contracts"`
				Next      string            `json:"next"`
				HasMore   bool              `json:"has_more"`
			}
			json.Unmarshal(b, &page)
			c.check(t, len(page.Contracts) == 2 && page.HasMore, "page 1: %d contracts, has_more %v", len(page.Contracts), page.HasMore)
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts?limit=1000&after=" + page.Next, token: "viewer", want: 200})
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts", token: "scoped", want: 200})
			c.on(empty).do(t, oaExchange{method: "GET", path: "/v1/contracts", token: "empty-viewer", want: 200})
			for _, q := range []string{"limit=0", "limit=1001", "limit=ten", "after=%21%21"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts?" + q, token: "viewer", want: 400})
				c.problemKind(t, b, "invalid")
			}
			c.readFailures(t, "/v1/contracts")
		}},
		{"getContract", func(t *testing.T) {
			for _, code := range []string{"C1", "C2", "C3", "TERM"} {
				c.do(t, oaExchange{method: "GET", path: "/v1/contracts/" + code, token: "viewer", want: 200})
			}
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/SCOPED", token: "scoped", want: 200})
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts/NOPE", token: "viewer", want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1", token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/contracts/C1")
		}},
		{"recordDelivery", func(t *testing.T) {
			body := `{"tonnes":"100","date":"2025-03-01","vintage":2024,"serials":"PURO-X:1-100","registry_tx":"TX-1",
				"price_per_tonne":"140.00","note":"First delivery.","allow_late":false}`
			delivery1Key = c.key("deliver")
			h, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: delivery1Key, body: body, want: 201})
			delivery1 = entryBody(b)
			c.check(t, h.Get("Location") == "/v1/entries/"+delivery1, "Location %q", h.Get("Location"))
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: delivery1Key, body: body, want: 201, replay: true})
			delivery2Key = c.key("deliver")
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: delivery2Key,
				body: `{"tonnes":"50.25","date":"2025-06-01"}`, want: 201})
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"20","date":"2025-07-01"}`, want: 201})
			deliveryForBatch = entryBody(b)
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C3/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"10","date":"2025-05-01","vintage":2025}`, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C2/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"30","date":"2025-05-01","price_per_tonne":"14500"}`, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/SCOPED/deliveries", token: "scoped", key: c.key("deliver"),
				body: `{"tonnes":"1","date":"2025-05-01"}`, want: 201})

			for _, bad := range []string{`{"tonnes":100,"date":"2025-03-01"}`, `{"tonnes":"1","date":"2025-03-01","contract":"C1"}`,
				`{"tonnes":"1","date":"2025-03-01","key":"k"}`, `{"tonnes":"1.0001","date":"2025-03-01"}`, `{"date":"2025-03-01"}`,
				`{"tonnes":"1","date":"2025-03-01","vintage":"2024"}`, `[]`} {
				_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: c.key("deliver"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"1","date":"2030-01-01"}`, want: 400})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "viewer", key: c.key("deliver"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "scoped", key: c.key("deliver"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/NOPE/deliveries", token: "recorder", key: c.key("deliver"), body: body, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"5000","date":"2025-03-01"}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: c.key("deliver"),
				body: `{"tonnes":"10","date":"2025-03-01","serials":"PURO-X:91-100"}`, want: 409})
			c.problemKind(t, b, "conflict")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/deliveries", token: "recorder", key: delivery1Key,
				body: `{"tonnes":"1","date":"2025-03-01"}`, want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts/C1/deliveries", "recorder", `{"tonnes":"1","date":"2025-03-01"}`, ta.api.MaxBody)
		}},
		{"recordRetirement", func(t *testing.T) {
			retireKey = c.key("retire")
			body := `{"tonnes":"10","date":"2025-04-01","beneficiary":"Acme Buyer","reason":"2024 claim","claim":"Net zero 2024",
				"serials":"PURO-X:1-10","vintage":2024}`
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: retireKey, body: body, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: retireKey, body: body, want: 201, replay: true})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: c.key("retire"),
				body: `{"tonnes":"5.5","date":"2025-06-02","beneficiary":"Acme Buyer","reason":"offset"}`, want: 201})
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: c.key("retire"),
				body: `{"tonnes":"1","date":"2025-06-02","reason":"offset"}`, want: 400, badBody: true})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: c.key("retire"),
				body: `{"tonnes":"100000","date":"2025-06-02","beneficiary":"B","reason":"r"}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/NOPE/retirements", token: "recorder", key: c.key("retire"), body: body, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "viewer", key: c.key("retire"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/retirements", token: "recorder", key: retireKey,
				body: strings.Replace(body, "2024 claim", "another claim", 1), want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts/C1/retirements", "recorder", body, ta.api.MaxBody)
		}},
		{"recordReversal", func(t *testing.T) {
			key := c.key("reverse")
			body := `{"tonnes":"5","date":"2025-04-02","reason":"kiln fire","remedy":"replace","serials":"PURO-X:50-54"}`
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "recorder", key: key, body: body, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "recorder", key: c.key("reverse"),
				body: `{"tonnes":"2","date":"2025-04-03","reason":"leak","remedy":"buffer"}`, want: 201})
			for _, bad := range []string{`{"tonnes":"2","date":"2025-04-03","reason":"leak","remedy":"refund"}`,
				`{"tonnes":"2","date":"2025-04-03"}`} {
				_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "recorder", key: c.key("reverse"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "recorder", key: c.key("reverse"),
				body: `{"tonnes":"100000","date":"2025-04-03","reason":"leak"}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/NOPE/reversals", token: "recorder", key: c.key("reverse"), body: body, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "scoped", key: c.key("reverse"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/reversals", token: "recorder", key: key,
				body: strings.Replace(body, "kiln fire", "flood", 1), want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts/C1/reversals", "recorder", body, ta.api.MaxBody)
		}},
		{"recordCancellation", func(t *testing.T) {
			key := c.key("cancel")
			body := `{"tonnes":"10","date":"2025-05-02","reason":"buyer's request"}`
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/cancellations", token: "recorder", key: key, body: body, want: 201})
			cancelC1 = entryBody(b)
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/TERM/cancellations", token: "recorder", key: c.key("cancel"),
				body: `{"terminate":true,"date":"2025-05-03","reason":"supplier insolvent"}`, want: 201})
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/TERM", token: "viewer", want: 200})
			for _, bad := range []string{`{"date":"2025-05-02","reason":"r"}`, `{"terminate":false,"date":"2025-05-02","reason":"r"}`,
				`{"tonnes":"1","terminate":"yes","date":"2025-05-02","reason":"r"}`} {
				_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/cancellations", token: "recorder", key: c.key("cancel"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/cancellations", token: "recorder", key: c.key("cancel"),
				body: `{"tonnes":"100000","date":"2025-05-02","reason":"r"}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/NOPE/cancellations", token: "recorder", key: c.key("cancel"), body: body, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/cancellations", token: "viewer", key: c.key("cancel"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/cancellations", token: "recorder", key: key,
				body: strings.Replace(body, `"10"`, `"11"`, 1), want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts/C1/cancellations", "recorder", body, ta.api.MaxBody)
		}},
		{"amendContract", func(t *testing.T) {
			key := c.key("amend")
			body := `{"tonnes":"1200","date":"2025-05-05","reason":"more supply"}`
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/amendments", token: "admin", key: key, body: body, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C2/amendments", token: "admin", key: c.key("amend"),
				body: `{"schedule":[{"year":1,"tonnes":"150","vintage":2025},{"year":2,"tonnes":"100.5","price_per_tonne":"16000"},{"year":3,"tonnes":"50"}],
				"date":"2025-05-05","reason":"front-load"}`, want: 201})
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C2", token: "viewer", want: 200})
			for _, bad := range []string{`{"date":"2025-05-05","reason":"r"}`, `{"tonnes":"5","date":"2025-05-05","reason":"r","terminate":true}`,
				`{"schedule":[],"date":"2025-05-05","reason":"r"}`} {
				_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/amendments", token: "admin", key: c.key("amend"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/amendments", token: "admin", key: c.key("amend"),
				body: `{"tonnes":"1","date":"2025-05-05","reason":"less"}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/amendments", token: "recorder", key: c.key("amend"), body: body, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/NOPE/amendments", token: "admin", key: c.key("amend"), body: body, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/contracts/C1/amendments", token: "admin", key: key,
				body: strings.Replace(body, "1200", "1300", 1), want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/contracts/C1/amendments", "admin", body, ta.api.MaxBody)
		}},
		{"listContractEntries", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/entries?limit=3", token: "viewer", want: 200})
			next := oaMember(t, b, "next")
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/entries?after=" + next, token: "viewer", want: 200})
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/SCOPED/entries", token: "scoped", want: 200})
			for _, q := range []string{"limit=-1", "after=zzz"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/entries?" + q, token: "viewer", want: 400})
				c.problemKind(t, b, "invalid")
			}
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/contracts/NOPE/entries", token: "viewer", want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/entries", token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/contracts/C1/entries")
		}},
		{"listContractSerials", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/serials", token: "viewer", want: 200})
			var got struct{ Blocks []map[string]any }
			json.Unmarshal(b, &got)
			c.check(t, len(got.Blocks) >= 3, "C1 has %d serial blocks, want delivered, retired and reversed ones: %s", len(got.Blocks), b)
			c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C2/serials", token: "viewer", want: 200})
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/contracts/NOPE/serials", token: "viewer", want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/contracts/C1/serials", token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/contracts/C1/serials")
		}},
		{"listEntries", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/entries?limit=3", token: "viewer", want: 200})
			c.do(t, oaExchange{method: "GET", path: "/v1/entries?limit=1000&after=" + oaMember(t, b, "next"), token: "viewer", want: 200})
			c.do(t, oaExchange{method: "GET", path: "/v1/entries", token: "scoped", want: 200})
			c.on(empty).do(t, oaExchange{method: "GET", path: "/v1/entries", token: "empty-viewer", want: 200})
			for _, q := range []string{"limit=1001", "after=AQ%3D%3D", "after=Ag"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/entries?" + q, token: "viewer", want: 400})
				c.problemKind(t, b, "invalid")
			}
			c.readFailures(t, "/v1/entries")
		}},
		{"getEntry", func(t *testing.T) {
			c.do(t, oaExchange{method: "GET", path: "/v1/entries/" + delivery1, token: "viewer", want: 200})
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/entries/nope", token: "viewer", want: 400})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/entries/01900000-0000-7000-8000-000000000000", token: "viewer", want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/entries/" + delivery1, token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/entries/"+delivery1)
		}},
		{"revertEntry", func(t *testing.T) {
			key := c.key("revert")
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + cancelC1 + "/revert", token: "recorder", key: key,
				body: `{"reason":"entered twice"}`, want: 201})
			revertID = entryBody(b)
			c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + cancelC1 + "/revert", token: "recorder", key: key,
				body: `{"reason":"entered twice"}`, want: 201, replay: true})
			c.do(t, oaExchange{method: "POST", path: "/v1/entries/key:" + delivery2Key + "/revert", token: "recorder", key: c.key("revert"),
				body: `{"reason":"wrong contract","date":"2025-06-03"}`, want: 201})
			c.do(t, oaExchange{method: "GET", path: "/v1/entries/" + revertID, token: "viewer", want: 200})
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + cancelC1 + "/revert", token: "recorder", key: c.key("revert"),
				body: `{"reason":"again"}`, want: 409})
			c.problemKind(t, b, "conflict")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/01900000-0000-7000-8000-000000000000/revert", token: "recorder",
				key: c.key("revert"), body: `{"reason":"r"}`, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/nope/revert", token: "recorder", key: c.key("revert"), body: `{"reason":"r"}`, want: 400})
			c.problemKind(t, b, "invalid")
			for _, bad := range []string{`{"date":"2025-06-03"}`, `{"reason":"r","entry":"` + delivery1 + `"}`, `{"reason":"r","tonnes":"1"}`} {
				_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + delivery1 + "/revert", token: "recorder", key: c.key("revert"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + delivery1 + "/revert", token: "viewer", key: c.key("revert"), body: `{"reason":"r"}`, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + delivery1 + "/revert", token: "scoped", key: c.key("revert"), body: `{"reason":"r"}`, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/entries/" + cancelC1 + "/revert", token: "recorder", key: key,
				body: `{"reason":"another reason"}`, want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/entries/"+delivery1+"/revert", "recorder", `{"reason":"r"}`, ta.api.MaxBody)
		}},
		{"submitBatch", func(t *testing.T) {
			key := c.key("batch")
			atomic := `{"operations":[{"op":"deliver","contract":"C1","tonnes":"10","date":"2025-08-01","vintage":2025},
				{"op":"retire","contract":"C1","tonnes":"1","date":"2025-08-02","beneficiary":"Acme Buyer","reason":"r","key":"` + c.key("own") + `"},
				{"op":"cancel","contract":"C3","terminate":true,"date":"2025-08-03","reason":"done"},
				{"op":"reverse","contract":"C1","tonnes":"1","date":"2025-08-04","reason":"leak","remedy":"buffer"},
				{"op":"revert","entry":"` + deliveryForBatch + `","reason":"duplicate"}]}`
			c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: key, body: atomic, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: key, body: atomic, want: 201, replay: true})
			c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "admin", key: c.key("batch"),
				body: `{"atomic":true,"operations":[{"op":"amend","contract":"C1","tonnes":"1300","date":"2025-08-05","reason":"r"},
				{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-08-05","key":"` + retireKey + `"}]}`, want: 422})
			each := `{"atomic":false,"operations":[{"op":"deliver","contract":"C1","tonnes":"5","date":"2025-08-01"},
				{"op":"deliver","contract":"NOPE","tonnes":"5","date":"2025-08-01"},
				{"op":"retire","contract":"C1","tonnes":"100000","date":"2025-08-02","beneficiary":"B","reason":"r"}]}`
			_, b := c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"), body: each, want: 200})
			var res BatchJSON
			json.Unmarshal(b, &res)
			statuses := []int{}
			for _, r := range res.Results {
				statuses = append(statuses, r.Status)
			}
			c.check(t, slices.Equal(statuses, []int{201, 404, 409}), "non-atomic results %v, want [201 404 409]", statuses)
			// An operation the token may not do refuses the whole batch, one by one or not.
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"),
				body: `{"atomic":false,"operations":[{"op":"deliver","contract":"C1","tonnes":"5","date":"2025-08-01"},
				{"op":"amend","contract":"C1","tonnes":"1300","date":"2025-08-05","reason":"r"}]}`, want: 403})
			c.problemKind(t, b, "forbidden")
			c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "admin", key: c.key("batch"),
				body: `{"operations":[{"op":"amend","contract":"C1","tonnes":"1250","date":"2025-08-05","reason":"r"}]}`, want: 201})

			for _, bad := range []string{`{"operations":[]}`, `{"operations":[{"op":"deliver","contract":"C1","tonnes":"x","date":"2025-08-01"}]}`,
				`{"atomic":true,"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-08-01"}],"comment":"c"}`,
				`{"operations":[{"op":"fly","contract":"C1"}]}`, `{"operations":[{"op":"deliver","tonnes":"1","date":"2025-08-01"}]}`} {
				_, b := c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"), body: bad, want: 400, badBody: true})
				c.problemKind(t, b, "invalid")
			}
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"),
				body: `{"operations":[{"op":"deliver","contract":"NOPE","tonnes":"1","date":"2025-08-01"}]}`, want: 404})
			c.problemKind(t, b, "not-found")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"),
				body: `{"operations":[{"op":"amend","contract":"C2","tonnes":"320.5","date":"2025-08-05","reason":"r"}]}`, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "viewer", key: c.key("batch"), body: atomic, want: 403})
			c.problemKind(t, b, "forbidden")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: c.key("batch"),
				body: `{"operations":[{"op":"retire","contract":"C1","tonnes":"100000","date":"2025-08-02","beneficiary":"B","reason":"r"}]}`, want: 409})
			c.problemKind(t, b, "insufficient")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/batches", token: "recorder", key: key, body: each, want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			c.writeFailures(t, "/v1/batches", "recorder", `{"operations":[{"op":"deliver","contract":"C1","tonnes":"1","date":"2025-08-01"}]}`, ta.api.MaxBatchBody)
		}},
		{"getReport", func(t *testing.T) {
			for _, q := range []string{"term", "term?format=json&as_of=2025-12-31", "term?contract=C1&known_at=2030-01-01",
				"term?known_at=2020-01-01T00:00:00Z", "period?year=2025", "period?years=2024..2026&fiscal_year_start=7&by=method",
				"period?year=2025&by=contract&format=json", "portfolio", "portfolio?as_of=2027-12-31"} {
				c.do(t, oaExchange{method: "GET", path: "/v1/reports/" + q, token: "viewer", want: 200})
			}
			for _, q := range []string{"term?format=csv", "term?format=html", "period?year=2025&format=csv", "period?year=2025&format=html",
				"portfolio?format=csv", "portfolio?format=html"} {
				h, _ := c.do(t, oaExchange{method: "GET", path: "/v1/reports/" + q, token: "viewer", want: 200})
				c.check(t, strings.HasSuffix(h.Get("Content-Type"), "; charset=utf-8"), "%s: Content-Type %q", q, h.Get("Content-Type"))
			}
			c.do(t, oaExchange{method: "GET", path: "/v1/reports/term?contract=SCOPED", token: "scoped", want: 200})
			for _, q := range []string{"term", "period?year=2025", "portfolio"} {
				c.on(empty).do(t, oaExchange{method: "GET", path: "/v1/reports/" + q, token: "empty-viewer", want: 200})
			}
			for _, q := range []string{"nope", "term?format=table", "period", "period?year=25", "period?year=2025&years=2024..2025",
				"period?years=2026..2024", "period?year=2025&fiscal_year_start=13", "period?year=2025&by=colour", "term?year=2025",
				"portfolio?contract=C1", "term?as_of=yesterday", "term?known_at=soon", "term?colour=red"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/reports/" + q, token: "viewer", want: 400})
				c.problemKind(t, b, "invalid")
			}
			for _, q := range []string{"portfolio", "term", "term?contract=C1"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/reports/" + q, token: "scoped", want: 403})
				c.problemKind(t, b, "forbidden")
			}
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/reports/term?contract=NOPE", token: "viewer", want: 404})
			c.problemKind(t, b, "not-found")
			c.readFailures(t, "/v1/reports/term")
		}},
		{"getAudit", func(t *testing.T) {
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/audit", token: "viewer", want: 200})
			var a struct{ OK bool }
			json.Unmarshal(b, &a)
			c.check(t, a.OK, "the audit found something: %s", b)
			c.on(empty).do(t, oaExchange{method: "GET", path: "/v1/audit", token: "empty-viewer", want: 200})
			_, b = c.do(t, oaExchange{method: "GET", path: "/v1/audit", token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/audit")
		}},
		{"createAuditStatement", func(t *testing.T) {
			key := c.key("statement")
			c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: key, want: 201})
			c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: key, want: 201, replay: true})
			c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: c.key("statement"), body: "{}", want: 201})
			_, b := c.on(signed).do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: c.key("statement"), body: "{}", want: 201})
			c.check(t, oaMember(t, b, "signature", "algorithm") == "ed25519", "the statement is not signed: %s", b)
			c.on(empty).do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "empty-viewer", key: c.key("statement"), want: 201})
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: c.key("statement"), body: `{"since":"x"}`, want: 400, badBody: true})
			c.problemKind(t, b, "invalid")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "viewer", key: key, body: "{}", want: 422})
			c.problemKind(t, b, "idempotency-key-reused")
			_, b = c.do(t, oaExchange{method: "POST", path: "/v1/audit/statements", token: "scoped", key: c.key("statement"), want: 403})
			c.problemKind(t, b, "forbidden")
			c.writeFailures(t, "/v1/audit/statements", "viewer", "{}", ta.api.MaxBody)
		}},
		{"exportJournal", func(t *testing.T) {
			for q, ct := range map[string]string{"format=hledger": "text/plain", "format=beancount&from=2025-01-01&to=2025-12-31": "text/plain",
				"format=csv": "text/csv", "format=postings&from=2025-04-01": "text/csv", "format=hledger&to=2025-03-31": "text/plain"} {
				h, _ := c.do(t, oaExchange{method: "GET", path: "/v1/export?" + q, token: "viewer", want: 200})
				c.check(t, h.Get("Content-Type") == ct+"; charset=utf-8", "%s: Content-Type %q, want %s", q, h.Get("Content-Type"), ct)
			}
			c.on(empty).do(t, oaExchange{method: "GET", path: "/v1/export?format=beancount", token: "empty-viewer", want: 200})
			for _, q := range []string{"", "format=xml", "format=csv&from=2025-01-01", "format=hledger&from=2025-12-31&to=2025-01-01",
				"format=postings&from=2025-13-01", "format=beancount&to=someday"} {
				_, b := c.do(t, oaExchange{method: "GET", path: "/v1/export?" + q, token: "viewer", want: 400})
				c.problemKind(t, b, "invalid")
			}
			_, b := c.do(t, oaExchange{method: "GET", path: "/v1/export?format=hledger", token: "scoped", want: 403})
			c.problemKind(t, b, "forbidden")
			c.readFailures(t, "/v1/export?format=hledger")
		}},
	}

	// The steps are the document's operations, each once.
	var stepOps, docOps []string
	for _, s := range steps {
		stepOps = append(stepOps, s.op)
	}
	for _, op := range c.ops {
		docOps = append(docOps, op.ID)
	}
	sort.Strings(stepOps)
	sort.Strings(docOps)
	if !slices.Equal(stepOps, docOps) {
		t.Errorf("the steps are %v; the document's operations %v", stepOps, docOps)
	}
	for _, s := range steps {
		t.Run(s.op, s.run)
	}

	// Every operation answered a success and (but for those no request can fail) a failure,
	// and every status documented for it, but for the server's own failures (500, 503), which
	// only readiness answers on purpose.
	noFailure := map[string]bool{"getHealth": true, "getOpenAPI": true}
	for _, op := range c.ops {
		seen := c.seen[op.ID]
		var ok, failed bool
		for status := range seen {
			ok = ok || status < 300
			failed = failed || status >= 400
		}
		if !ok {
			t.Errorf("%s was never called with a request that succeeds", op)
		}
		if !failed && !noFailure[op.ID] {
			t.Errorf("%s was never called with a request that fails", op)
		}
		resps, _ := op.Op["responses"].(map[string]any)
		for status := range resps {
			code, _ := strconv.Atoi(status)
			if seen[code] == 0 && code != 500 && (code != 503 || op.ID == "getReadiness") {
				t.Errorf("%s never answered its documented status %d", op, code)
			}
		}
	}
	t.Logf("%d operations, %d requests, %d checks, in %v", len(c.ops), *c.sent, *c.checks, time.Since(start).Round(time.Millisecond))
}
