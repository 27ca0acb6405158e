package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is a client with a cookie jar that does not follow redirects, as a browser session
// the test inspects step by step.
func (ta *testAPI) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, http.Header, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// signIn logs the browser in with the named token and returns the signed-in portfolio page.
func (ta *testAPI) signIn(t *testing.T, c *http.Client, token string) string {
	t.Helper()
	_, _, page := get(t, c, ta.srv.URL+"/login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the login page has no CSRF field:\n%s", page)
	}
	st, h, body := post(t, c, ta.srv.URL+"/login", url.Values{"csrf": {m[1]}, "token": {ta.tokens[token]}})
	if st != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("sign in: %d %s %s", st, h.Get("Location"), body)
	}
	_, _, home := get(t, c, ta.srv.URL+"/")
	return home
}

// TestDashboardSession: pages need a session; the sign-in form needs its CSRF token and a
// known, unrevoked token; the cookie holds no token and is HttpOnly, Secure and SameSite
// Strict; sign-out needs the session's CSRF token; a revoked token's session ends.
func TestDashboardSession(t *testing.T) {
	ta := newAPI(t)
	c := ta.browser()
	st, h, _ := get(t, c, ta.srv.URL+"/contracts/SCOPED")
	if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login?next=") {
		t.Fatalf("a page without a session: %d %q, want a redirect to /login", st, h.Get("Location"))
	}
	// A form whose CSRF field does not match its cookie is refused.
	get(t, c, ta.srv.URL+"/login")
	if st, _, _ := post(t, c, ta.srv.URL+"/login", url.Values{"csrf": {"forged"}, "token": {ta.tokens["viewer"]}}); st != http.StatusForbidden {
		t.Errorf("sign in with a forged CSRF token: %d, want 403", st)
	}
	_, _, page := get(t, c, ta.srv.URL+"/login")
	csrf := csrfField.FindStringSubmatch(page)[1]
	if st, _, body := post(t, c, ta.srv.URL+"/login", url.Values{"csrf": {csrf}, "token": {"clt_wrong"}}); st != http.StatusUnauthorized || !strings.Contains(body, "not known") {
		t.Errorf("sign in with an unknown token: %d", st)
	}
	_, _, page = get(t, c, ta.srv.URL+"/login")
	csrf = csrfField.FindStringSubmatch(page)[1]
	resp, err := c.PostForm(ta.srv.URL+"/login?next=/contracts/SCOPED", url.Values{"csrf": {csrf}, "token": {ta.tokens["viewer"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/contracts/SCOPED" {
		t.Fatalf("sign in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v, want HttpOnly, Secure, SameSite=Strict", session)
	}
	if strings.Contains(session.Value, ta.tokens["viewer"]) || strings.Contains(session.Value, "clt_") {
		t.Errorf("the session cookie holds the token: %s", session.Value)
	}
	// An open redirect is not followed.
	_, _, page = get(t, c, ta.srv.URL+"/login")
	csrf = csrfField.FindStringSubmatch(page)[1]
	if _, h, _ := post(t, c, ta.srv.URL+"/login?next=//evil.example", url.Values{"csrf": {csrf}, "token": {ta.tokens["viewer"]}}); h.Get("Location") != "/" {
		t.Errorf("next=//evil.example redirected to %q", h.Get("Location"))
	}
	for _, p := range []string{"/", "/contracts/SCOPED", "/period?years=2025..2026&fiscal_year_start=7&by=method", "/audit", "/journal?kind=sign", "/v1/reports/term?format=csv"} {
		if st, _, body := get(t, c, ta.srv.URL+p); st != 200 {
			t.Errorf("GET %s signed in: %d %.300s", p, st, body)
		}
	}
	// The session reads the API but cannot write through it.
	req, _ := http.NewRequest("POST", ta.srv.URL+"/v1/contracts/SCOPED/deliveries", strings.NewReader(delivery))
	req.Header.Set("Idempotency-Key", "cookie-write")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a write with only the session cookie: %v %v, want 401", resp.StatusCode, err)
	}
	// Sign-out needs the session's CSRF token.
	_, _, home := get(t, c, ta.srv.URL+"/")
	if st, _, _ := post(t, c, ta.srv.URL+"/logout", url.Values{"csrf": {"forged"}}); st != http.StatusForbidden {
		t.Errorf("sign out with a forged CSRF token: %d, want 403", st)
	}
	if st, _, _ := get(t, c, ta.srv.URL+"/"); st != 200 {
		t.Errorf("still signed in after the forged sign-out: %d", st)
	}
	if st, h, _ := post(t, c, ta.srv.URL+"/logout", url.Values{"csrf": {csrfField.FindStringSubmatch(home)[1]}}); st != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Errorf("sign out: %d %q", st, h.Get("Location"))
	}
	if st, _, _ := get(t, c, ta.srv.URL+"/"); st != http.StatusSeeOther {
		t.Errorf("a page after sign-out: %d, want a redirect", st)
	}
	// A revoked token's session ends at the next page.
	c2 := ta.browser()
	ta.signIn(t, c2, "recorder")
	if err := ta.store.RevokeToken(context.Background(), "recorder"); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := get(t, c2, ta.srv.URL+"/"); st != http.StatusSeeOther {
		t.Errorf("a page after the token was revoked: %d, want a redirect to /login", st)
	}
}

// TestDashboardPages: the figures are on the pages, each a link to the entries behind it,
// and a scoped token sees only its contracts.
func TestDashboardPages(t *testing.T) {
	ta := newAPI(t)
	ta.contract("C1", `{"registry":"puro"}`)
	for i, b := range []string{`{"tonnes":"12","date":"2025-03-01","serials":"PURO:1-12","vintage":2024}`, `{"tonnes":"7.75","date":"2025-04-01"}`} {
		if st, _, body := ta.do("POST", "/v1/contracts/C1/deliveries", "recorder", "d"+string(rune('0'+i)), b); st != 201 {
			t.Fatalf("delivery: %d %s", st, body)
		}
	}
	if st, _, body := ta.do("POST", "/v1/contracts/C1/retirements", "recorder", "r1", `{"tonnes":"5","date":"2025-05-01","beneficiary":"Acme Buyer","claim":"FY2025","reason":"annual claim","serials":"PURO:1-5"}`); st != 201 {
		t.Fatalf("retirement: %d %s", st, body)
	}
	if st, _, body := ta.do("POST", "/v1/audit/statements", "viewer", "stmt-1", ""); st != 201 {
		t.Fatalf("statement: %d %s", st, body)
	}
	c := ta.browser()
	home := ta.signIn(t, c, "viewer")
	for _, want := range []string{
		`data-figure="delivered"><a href="/journal?contract=C1&amp;kind=deliver">19.750</a>`,
		`<svg class="hchart"`, `href="/contracts/C1"`, "USD",
		`href="/v1/reports/portfolio?format=csv"`,
	} {
		if !strings.Contains(home, want) {
			t.Errorf("the portfolio lacks %q", want)
		}
	}
	// Every figure in the contracts table is a link.
	table := home[strings.Index(home, `<table id="contracts">`):]
	table = table[:strings.Index(table, "</table>")]
	for _, cell := range regexp.MustCompile(`<td class="num"[^>]*>(.*?)</td>`).FindAllStringSubmatch(table, -1) {
		if !strings.HasPrefix(cell[1], "<a href=") {
			t.Errorf("a figure of the contracts table is not a link: %s", cell[1])
		}
	}
	_, _, contract := get(t, c, ta.srv.URL+"/contracts/C1")
	for _, want := range []string{`<svg class="vchart"`, "19.750", "Acme Buyer", "FY2025", "PURO:6-12", "<td>2024</td>", "token:recorder", `id="years"`} {
		if !strings.Contains(contract, want) {
			t.Errorf("the contract page lacks %q", want)
		}
	}
	_, _, journal := get(t, c, ta.srv.URL+"/journal?contract=C1&kind=deliver")
	if strings.Count(journal, `<tr id="e-`) != 2 {
		t.Errorf("the journal of C1's deliveries lists %d entries, want 2", strings.Count(journal, `<tr id="e-`))
	}
	_, _, audit := get(t, c, ta.srv.URL+"/audit")
	for _, want := range []string{`id="audit-status">clean`, "Today's books extend it."} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	_, _, period := get(t, c, ta.srv.URL+"/period?years=2025&fiscal_year_start=4")
	if !strings.Contains(period, "FY2025") && !strings.Contains(period, "2025") {
		t.Errorf("the period page lacks its year")
	}
	// A token limited to SCOPED: its portfolio has SCOPED alone; C1 and the whole-ledger pages are refused.
	cs := ta.browser()
	scoped := ta.signIn(t, cs, "scoped")
	if strings.Contains(scoped, `href="/contracts/C1"`) || !strings.Contains(scoped, `href="/contracts/SCOPED"`) {
		t.Error("the scoped portfolio should list SCOPED alone")
	}
	for _, p := range []string{"/contracts/C1", "/period", "/audit", "/journal?contract=C1"} {
		if st, _, _ := get(t, cs, ta.srv.URL+p); st != http.StatusForbidden {
			t.Errorf("scoped GET %s: %d, want 403", p, st)
		}
	}
	if _, _, j := get(t, cs, ta.srv.URL+"/journal"); strings.Contains(j, ">C1<") {
		t.Error("the scoped journal lists C1's entries")
	}
}
