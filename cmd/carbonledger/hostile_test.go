package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/carbonledger/carbonledger/internal/httpapi"
	"github.com/carbonledger/carbonledger/internal/registry"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// hostile are texts that look like SQL, HTML, spreadsheet formulas or terminal escapes. Each
// goes into every free-text field: a contract's buyer, supplier, project, region, standard
// and notes, and an operation's note, registry_tx, beneficiary, reason and claim.
var hostile = []string{
	`'); DROP TABLE entries;--`,
	`<script>alert(1)</script>`,
	`=HYPERLINK("http://x","y")`,
	`+cmd|' /C calc'!A0`,
	`-2+3`,
	`@SUM(1)`,
	"\x1b[31mred\x1b[0m",
	"\x1b]8;;http://x\x07link\x1b]8;;\x07",
	"line one\r\nline two",
	"tab\there",
	"\u202egnp.exe",
	"'=already quoted",
}

// hostileLedger is a database whose contracts HOST-0 ... each carry one hostile text in every
// field, written through all three front ends: the contract and a retirement through the API,
// a delivery through the CLI, a cancellation through import.
type hostileLedger struct {
	c      cli
	srv    *httptest.Server
	tokens map[string]string
}

func newHostileLedger(t *testing.T) *hostileLedger {
	c := newCLI(t)
	st, err := store.Open(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(httpapi.New(st, slog.New(slog.NewJSONHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	h := &hostileLedger{c: c, srv: srv, tokens: map[string]string{}}
	if h.tokens["admin"], err = st.CreateToken(context.Background(), "host-admin", "admin", nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var imp bytes.Buffer
	w := csv.NewWriter(&imp)
	w.Write([]string{"op", "contract", "tonnes", "date", "reason", "key"})
	for i, s := range hostile {
		code := fmt.Sprintf("HOST-%d", i)
		doc, _ := json.Marshal(map[string]any{"code": code, "buyer": s, "supplier": s, "project": s, "method": "biochar",
			"country": "MX", "region": s, "registry": "car", "standard": s, "durability_years": "100+",
			"term_start": "2025-01-01", "term_end": "2026-12-31", "signed_on": "2024-12-01", "tonnes": "1000",
			"price_per_tonne": "10.00", "currency": "USD", "notes": s + "\r\n" + s})
		h.post(t, "/v1/contracts", "sign-"+code, string(doc))
		c.ok("deliver", "--contract", code, "--tonnes", "100", "--date", "2025-03-01", "--serials", fmt.Sprintf("CAR-H%d:1-100", i),
			"--note", s, "--registry-tx", s, "--key", "deliver-"+code)
		body, _ := json.Marshal(map[string]any{"tonnes": "40", "date": "2025-03-02", "beneficiary": s, "reason": s, "claim": s,
			"serials": fmt.Sprintf("CAR-H%d:1-40", i), "registry_tx": s})
		h.post(t, "/v1/contracts/"+code+"/retirements", "retire-"+code, string(body))
		// As a spreadsheet or the export writes it: a text a spreadsheet would run is marked
		// with a leading apostrophe, which the import drops.
		w.Write([]string{"cancel", code, "50", "2025-04-01", reports.Neutralize(s), "cancel-" + code})
	}
	w.Flush()
	path := filepath.Join(dir, "cancel.csv")
	if err := os.WriteFile(path, imp.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("import", "--quiet", path)
	return h
}

func (h *hostileLedger) post(t *testing.T, path, key, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.tokens["admin"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

func (h *hostileLedger) get(t *testing.T, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+h.tokens["admin"])
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// storedExactly checks, through the API's JSON and the CLI's, that every field holds its
// hostile text byte for byte.
func storedExactly(t *testing.T, c cli, get func(path string) []byte) {
	t.Helper()
	for i, s := range hostile {
		code := fmt.Sprintf("HOST-%d", i)
		for from, raw := range map[string][]byte{
			"API":                         get("/v1/contracts/" + code),
			"contract show --format json": []byte(c.ok("contract", "show", code, "--format", "json")),
		} {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("%s: %v", from, err)
			}
			for _, f := range []string{"buyer", "supplier", "project", "region", "standard"} {
				if v[f] != s {
					t.Errorf("%s %s %s = %q, want %q", from, code, f, v[f], s)
				}
			}
			if v["notes"] != s+"\r\n"+s {
				t.Errorf("%s %s notes = %q, want %q", from, code, v["notes"], s+"\r\n"+s)
			}
		}
		var list struct {
			Entries []struct {
				Kind     string            `json:"kind"`
				Metadata map[string]string `json:"metadata"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(get("/v1/contracts/"+code+"/entries"), &list); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range list.Entries {
			var fields []string
			switch e.Kind {
			case "deliver":
				fields = []string{"note", "registry_tx"}
			case "retire":
				fields = []string{"beneficiary", "reason", "claim", "registry_tx"}
			case "cancel":
				fields = []string{"reason"}
			}
			for _, f := range fields {
				seen[e.Kind+"."+f] = true
				if e.Metadata[f] != s {
					t.Errorf("%s %s entry %s = %q, want %q", code, e.Kind, f, e.Metadata[f], s)
				}
			}
		}
		if len(seen) != 7 {
			t.Errorf("%s: the journal holds %d of the 7 operation text fields", code, len(seen))
		}
	}
}

// Hostile text in every field is stored exactly as given and shown inert: escaped by
// html/template in HTML (reports and dashboard pages), neutralised against formulas in every
// CSV (figures untouched), with control characters escaped in every table and on stderr,
// and exact in JSON; the operations CSV reads back into another ledger exactly.
func TestHostileTextStoredExactlyRenderedInert(t *testing.T) {
	h := newHostileLedger(t)
	c := h.c
	storedExactly(t, c, func(p string) []byte { return h.get(t, p) })

	t.Run("HTML", func(t *testing.T) {
		pages := map[string]string{
			"report term":      c.ok("report", "term", "--format", "html", "--as-of", "2025-12-31"),
			"report portfolio": c.ok("report", "portfolio", "--format", "html", "--as-of", "2025-12-31"),
			"report period":    c.ok("report", "period", "--year", "2025", "--by", "buyer", "--format", "html", "--as-of", "2025-12-31"),
		}
		for name, p := range dashboardPages(t, h) {
			pages[name] = p
		}
		for name, page := range pages {
			if strings.Contains(strings.ToLower(page), "<script") {
				t.Errorf("%s holds a raw <script>", name)
			}
			if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("%s does not show the text <script>alert(1)</script> escaped", name)
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		// Files with a column of the texts themselves (the others hold them inside other text:
		// a region beside its country, metadata as JSON).
		own := map[string]bool{"report portfolio": true, "report period by buyer": true, "contract list": true,
			"export --format csv": true, "GET /v1/export?format=csv": true}
		files := map[string]string{
			"report term":               c.ok("report", "term", "--format", "csv", "--as-of", "2025-12-31"),
			"report portfolio":          c.ok("report", "portfolio", "--format", "csv", "--as-of", "2025-12-31"),
			"report period by buyer":    c.ok("report", "period", "--year", "2025", "--by", "buyer", "--format", "csv", "--as-of", "2025-12-31"),
			"report period by region":   c.ok("report", "period", "--year", "2025", "--by", "region", "--format", "csv", "--as-of", "2025-12-31"),
			"contract list":             c.ok("contract", "list", "--format", "csv"),
			"export --format postings":  c.ok("export", "--format", "postings"),
			"export --format csv":       c.ok("export", "--format", "csv"),
			"GET /v1/export?format=csv": string(h.get(t, "/v1/export?format=csv")),
		}
		for name, out := range files {
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			found := 0
			for _, r := range recs[1:] {
				for j, cell := range r {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && !plainFigure.MatchString(cell) {
						t.Errorf("%s: column %s cell %q starts a formula", name, recs[0][j], cell)
					}
					for _, s := range hostile {
						if cell == reports.Neutralize(s) {
							found++
						}
					}
				}
			}
			if found == 0 && own[name] {
				t.Errorf("%s shows none of the hostile texts as a cell of its own", name)
			}
		}
	})

	t.Run("terminal", func(t *testing.T) {
		outs := map[string]string{
			"contract list":    c.ok("contract", "list"),
			"report term":      c.ok("report", "term", "--as-of", "2025-12-31"),
			"report portfolio": c.ok("report", "portfolio", "--as-of", "2025-12-31"),
			"report period":    c.ok("report", "period", "--year", "2025", "--by", "supplier", "--as-of", "2025-12-31"),
			"serials":          c.ok("serials"),
			"audit":            c.ok("audit"),
		}
		for i := range hostile {
			code := fmt.Sprintf("HOST-%d", i)
			outs["contract show "+code] = c.ok("contract", "show", code)
			outs["journal "+code] = c.ok("journal", code)
		}
		// What a write prints, and the errors that quote a value.
		outs["deliver"] = c.ok("deliver", "--contract", "HOST-6", "--tonnes", "1", "--date", "2025-05-01", "--note", hostile[6],
			"--registry-tx", hostile[6], "--key", hostile[7])
		for _, args := range [][]string{
			{"deliver", "--contract", "HOST-6", "--tonnes", "2", "--date", "2025-05-01", "--key", hostile[7]},
			{"retire", "--contract", "HOST-6", "--tonnes", "1", "--date", "2025-05-01", "--beneficiary", hostile[6], "--reason", hostile[8], "--serials", hostile[6]},
			{"deliver", "--contract", hostile[6], "--tonnes", "1", "--date", "2025-05-01"},
			{"token", "create", "--name", hostile[6], "--role", "viewer"},
			{"journal", hostile[7]},
		} {
			code, out, errOut := c.run(args...)
			if code == 0 {
				t.Errorf("%q succeeded", args)
			}
			outs[fmt.Sprintf("stderr of %q", args)] = out + errOut
		}
		for name, out := range outs {
			if bad := controlIn(out); bad != "" {
				t.Errorf("%s writes %s to the terminal:\n%q", name, bad, out)
			}
		}
		if !strings.Contains(outs["contract show HOST-6"], `\x1b[31mred\x1b[0m`) {
			t.Errorf("contract show does not show ESC escaped:\n%s", outs["contract show HOST-6"])
		}
	})

	t.Run("JSON keeps exact values", func(t *testing.T) {
		var v struct {
			Entries []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"entries"`
		}
		if err := json.Unmarshal([]byte(c.ok("journal", "HOST-7", "--format", "json")), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Entries) < 2 || v.Entries[1].Metadata["note"] != hostile[7] {
			t.Errorf("journal --format json does not carry the note exactly: %+v", v.Entries)
		}
	})

	t.Run("export csv reads back exactly", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "ledger.csv")
		c.ok("export", "--format", "csv", "--output", file)
		again := newCLI(t)
		again.ok("import", "--quiet", file)
		storedExactly(t, again, func(p string) []byte {
			code := strings.TrimPrefix(p, "/v1/contracts/")
			if book, ok := strings.CutSuffix(code, "/entries"); ok {
				return []byte(again.ok("journal", book, "--format", "json"))
			}
			return []byte(again.ok("contract", "show", code, "--format", "json"))
		})
	})
}

// plainFigure is a cell a spreadsheet reads as a number: the only kind that may start with '-'.
var plainFigure = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// controlIn names the first control character (other than a line feed) or text-reordering
// rune in out, or "".
func controlIn(out string) string {
	for i, r := range out {
		switch {
		case r == utf8.RuneError:
			return fmt.Sprintf("an invalid byte at %d", i)
		case r == '\n':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("control %U at %d", r, i)
		case r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			return fmt.Sprintf("%U at %d", r, i)
		}
	}
	return ""
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashboardPages signs in to the dashboard and returns its pages that show the contracts'
// texts.
func dashboardPages(t *testing.T, h *hostileLedger) map[string]string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(method, path string, form url.Values) string {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "POST" {
			resp, err = b.PostForm(h.srv.URL+path, form)
		} else {
			resp, err = b.Get(h.srv.URL + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
		return string(body)
	}
	m := csrfInput.FindStringSubmatch(fetch("GET", "/login", nil))
	if m == nil {
		t.Fatal("no CSRF field on the login page")
	}
	fetch("POST", "/login", url.Values{"csrf": {m[1]}, "token": {h.tokens["admin"]}})
	return map[string]string{
		"dashboard portfolio": fetch("GET", "/", nil),
		"dashboard contract":  fetch("GET", "/contracts/HOST-1", nil),
		"dashboard journal":   fetch("GET", "/journal?contract=HOST-1", nil),
		"dashboard period":    fetch("GET", "/period?years=2025&by=buyer", nil),
	}
}

// The reconciliation's text and CSV show a registry export's and the ledger's text inert:
// the registry's rows are input from outside like any other.
func TestReconcileOutputInert(t *testing.T) {
	var items []registry.Item
	for i, s := range hostile {
		r, err := ledger.ParseSerials(fmt.Sprintf("CAR-R:%d-%d", i*10+1, i*10+10))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, registry.Item{Class: registry.Disagrees, Detail: s, LedgerTonnes: ledger.MustTonnes("10"),
			Record: &registry.Record{Line: i + 2, Serials: r, Count: 10, Quantity: ledger.MustTonnes("10"), Status: "Retired",
				Beneficiary: s, Reason: s},
			Facts: []registry.Fact{{Field: "beneficiary", Outcome: registry.Differs, Registry: s, Ledger: s}}})
	}
	rep := reconcileReport{File: hostile[6] + ".csv", Export: &registry.Export{}, Result: registry.Result{Items: items}}
	var text, out bytes.Buffer
	if err := rep.text(&text); err != nil {
		t.Fatal(err)
	}
	if bad := controlIn(text.String()); bad != "" {
		t.Errorf("reconcile's text writes %s to the terminal:\n%q", bad, text.String())
	}
	if err := rep.csv(&out); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll() // (which reads a cell's CR LF as LF)
	if err != nil {
		t.Fatal(err)
	}
	details := 0
	for _, r := range recs[1:] {
		for j, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && !plainFigure.MatchString(cell) {
				t.Errorf("reconcile CSV column %s cell %q starts a formula", recs[0][j], cell)
			}
			var line int
			fmt.Sscan(r[0], &line)
			if recs[0][j] == "detail" && line >= 2 && reports.Unneutralize(cell) == strings.ReplaceAll(hostile[line-2], "\r\n", "\n") {
				details++
			}
		}
	}
	if details != len(hostile) {
		t.Errorf("reconcile CSV shows %d details as given (once neutralised), want the texts", details)
	}
}
