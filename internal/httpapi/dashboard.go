package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// The dashboard at /: server-rendered pages (reports.RenderDashboard) over the same reads as
// the API. A viewer signs in with a token once; the browser then keeps a session cookie
// (HttpOnly, Secure, SameSite=Strict) that names the token and is signed with a key the
// server draws when it starts, never the token itself; each page checks that the token still
// exists and is not revoked. Forms that write (sign in, sign out) carry a CSRF token.

const (
	sessionCookie = "cl_session"
	csrfCookie    = "cl_csrf"
	sessionLife   = 12 * time.Hour
)

// dashboardRoutes are the dashboard's pages; they are not part of the API's document.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.page(s.dashPortfolio))
	mux.HandleFunc("GET /contracts/{code}", s.page(s.dashContract))
	mux.HandleFunc("GET /period", s.page(s.dashPeriod))
	mux.HandleFunc("GET /audit", s.page(s.dashAudit))
	mux.HandleFunc("GET /journal", s.page(s.dashJournal))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// pageCSP allows a page nothing but its own inline styles and forms posting to itself.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"

// sign is the session key's HMAC of parts.
func (s *Server) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.sessionKey)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session reads and checks the session cookie: the token's name, if the signature and the
// expiry hold.
func (s *Server) session(r *http.Request) (name, value string, ok bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || time.Now().Unix() > exp {
		return "", "", false
	}
	if subtle.ConstantTimeCompare([]byte(s.sign("session", string(raw), parts[1])), []byte(parts[2])) != 1 {
		return "", "", false
	}
	return string(raw), c.Value, true
}

// sessionToken is the token a valid session names, if it still holds.
func (s *Server) sessionToken(r *http.Request) (store.Token, string, error) {
	name, value, ok := s.session(r)
	if !ok {
		return store.Token{}, "", newProblem("unauthorized", "sign in first")
	}
	tok, err := s.Store.TokenByName(r.Context(), name)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return tok, "", newProblem("unauthorized", "the session's token is gone")
	case err != nil:
		return tok, "", err
	case tok.RevokedAt != nil:
		return tok, "", newProblem("unauthorized", "the token "+tok.Name+" was revoked")
	}
	return tok, value, nil
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
}

// pageFunc renders one dashboard page for a signed-in viewer.
type pageFunc func(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error)

// page signs the viewer in (or sends them to /login), renders the page, and answers a
// failure as an HTML page with the problem's status.
func (s *Server) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, value, err := s.sessionToken(r)
		if err != nil {
			var p *Problem
			if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.dashError(w, r, err)
			return
		}
		setLogToken(r, tok.Name)
		r = r.WithContext(store.WithRecorder(r.Context(), "token:"+tok.Name))
		base := reports.DashPage{User: tok.Name, Role: tok.Role, CSRF: s.sign("csrf", value),
			AsOf: ledger.FormatDate(ledger.Date(s.Now().UTC().Date()))}
		v, err := fn(w, r, tok, base)
		if err != nil {
			s.dashError(w, r, err)
			return
		}
		var b bytes.Buffer
		if err := reports.RenderDashboard(&b, v); err != nil {
			s.dashError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.Write(b.Bytes())
	}
}

// dashError answers a dashboard failure as a short HTML page with the problem's status.
func (s *Server) dashError(w http.ResponseWriter, r *http.Request, err error) {
	p, known := problemOf(err)
	if !known {
		s.Log.ErrorContext(r.Context(), "dashboard page failed", "path", logPath(r), "error", err.Error())
	}
	var b bytes.Buffer
	reports.RenderDashboard(&b, reports.DashJournal{DashPage: reports.DashPage{Title: p.Title, Notice: p.Detail, User: "", Section: ""}})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	w.Write(b.Bytes())
}

// loginPage shows the sign-in form, with a fresh CSRF cookie and the same value in the form.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	raw := make([]byte, 24)
	rand.Read(raw)
	csrf := base64.RawURLEncoding.EncodeToString(raw)
	setCookie(w, csrfCookie, csrf, 3600)
	var b bytes.Buffer
	if err := reports.RenderDashboard(&b, reports.DashLogin{DashPage: reports.DashPage{Title: "Sign in", CSRF: csrf}, Error: msg}); err != nil {
		s.dashError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// login checks the form's CSRF token against its cookie, then the token, and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		s.renderLogin(w, r, http.StatusForbidden, "The form expired; sign in again.")
		return
	}
	tok, err := s.Store.TokenBySecret(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		s.renderLogin(w, r, http.StatusUnauthorized, "That token is not known.")
		return
	case err != nil:
		s.dashError(w, r, err)
		return
	case tok.RevokedAt != nil:
		s.renderLogin(w, r, http.StatusUnauthorized, "That token was revoked.")
		return
	}
	setLogToken(r, tok.Name)
	exp := strconv.FormatInt(time.Now().Add(sessionLife).Unix(), 10)
	setCookie(w, sessionCookie, base64.RawURLEncoding.EncodeToString([]byte(tok.Name))+"."+exp+"."+s.sign("session", tok.Name, exp), int(sessionLife/time.Second))
	setCookie(w, csrfCookie, "", -1)
	next := r.URL.Query().Get("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session, if the form carries the session's CSRF token.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_, value, ok := s.session(r)
	if err := r.ParseForm(); err != nil || !ok || subtle.ConstantTimeCompare([]byte(s.sign("csrf", value)), []byte(r.PostForm.Get("csrf"))) != 1 {
		s.dashError(w, r, newProblem("forbidden", "the sign-out form did not come from this session"))
		return
	}
	setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// scopeOf is the contracts a token may see (nil for every contract).
func scopeOf(tok store.Token) []string { return tok.Contracts }

func (s *Server) contractFlows(ctx context.Context, tok store.Token, code string) ([]*ledger.ContractFlows, time.Time, error) {
	today := ledger.Date(s.Now().UTC().Date())
	cfs, err := s.reads().ContractReport(ctx, store.ReportQuery{AsOf: today, Contract: code, Inventory: code == ""})
	if err != nil {
		return nil, today, err
	}
	kept := cfs[:0]
	for _, cf := range cfs {
		if tok.Covers(cf.Contract.Code) {
			kept = append(kept, cf)
		}
	}
	return kept, today, nil
}

func (s *Server) dashPortfolio(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error) {
	cfs, today, err := s.contractFlows(r.Context(), tok, "")
	if err != nil {
		return nil, err
	}
	meta := reports.NewMeta(today, time.Time{})
	v := reports.DashPortfolio{DashPage: p, Term: reports.BuildTerm(meta, cfs, today), Portfolio: reports.BuildPortfolio(meta, cfs, today),
		Durability: map[string]string{}}
	v.Title, v.Section = "Portfolio", "portfolio"
	if tok.Contracts == nil {
		v.Downloads = downloads("/v1/reports/portfolio?")
	}
	for _, c := range v.Term.Contracts {
		v.ScheduledToDate, v.Shortfall = v.ScheduledToDate.Add(c.ScheduledToDate), v.Shortfall.Add(c.Shortfall)
	}
	// Value per currency: committed is the contracted tonnes at the contract's price;
	// delivered, each delivery at its own price (the rollups' value).
	committed, delivered, scales := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}, map[string]int32{}
	var currencies []string
	for _, cf := range cfs {
		c := cf.Contract
		v.Durability[c.Code] = c.Durability.String()
		if c.Currency == "" {
			continue
		}
		if _, seen := scales[c.Currency]; !seen {
			scale, ok := ledger.CurrencyScale(c.Currency)
			if !ok {
				scale = 2
			}
			scales[c.Currency] = scale
			currencies = append(currencies, c.Currency)
		}
		if c.PricePerTonne != nil {
			committed[c.Currency] = committed[c.Currency].Add(cf.Total.Contracted.Decimal().Mul(*c.PricePerTonne))
		}
		delivered[c.Currency] = delivered[c.Currency].Add(cf.Total.Value)
	}
	sort.Strings(currencies)
	for _, cur := range currencies {
		v.Values = append(v.Values, reports.DashValue{Currency: cur, Committed: committed[cur].StringFixed(scales[cur]),
			Delivered: delivered[cur].StringFixed(scales[cur])})
	}
	return v, nil
}

func downloads(base string) []reports.DashLink {
	return []reports.DashLink{{Label: "CSV", URL: base + "format=csv"}, {Label: "JSON", URL: base + "format=json"},
		{Label: "HTML report", URL: base + "format=html"}}
}

// dashEntry is an entry as the dashboard lists it: what moved is its positive postings.
func dashEntry(e ledger.Entry) reports.DashEntry {
	moved := ledger.Zero
	for _, p := range e.Postings {
		if p.Amount.IsPositive() {
			moved = moved.Add(p.Amount)
		}
	}
	v := service.EntryView(e)
	md := e.Metadata
	return reports.DashEntry{ID: e.ID, Book: e.Book, Kind: string(e.Kind), EffectiveOn: v.EffectiveOn, RecordedAt: v.RecordedAt,
		RecordedBy: md[ledger.MetaRecordedBy], Description: e.Description, Hash: v.Hash, Seq: e.Seq, Tonnes: moved.String(),
		Beneficiary: md["beneficiary"], Claim: md["claim"], Reason: md["reason"], Serials: md["serials"]}
}

func (s *Server) dashContract(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error) {
	code := r.PathValue("code")
	if err := covers(tok, code); err != nil {
		return nil, err
	}
	st, err := s.reads().Contract(r.Context(), code)
	if err != nil {
		return nil, err
	}
	cfs, today, err := s.contractFlows(r.Context(), tok, code)
	if err != nil {
		return nil, err
	}
	term := reports.BuildTerm(reports.NewMeta(today, time.Time{}), cfs, today)
	if len(term.Contracts) != 1 {
		return nil, fmt.Errorf("dashboard: the term report of %s has %d contracts", code, len(term.Contracts))
	}
	v := reports.DashContract{DashPage: p, Contract: term.Contracts[0]}
	v.Title, v.Downloads = "Contract "+code, downloads("/v1/reports/term?contract="+url.QueryEscape(code)+"&")
	const shown = 100
	es, err := s.reads().EntriesPage(r.Context(), code, max(0, st.Entries-shown), shown)
	if err != nil {
		return nil, err
	}
	for i := len(es) - 1; i >= 0; i-- {
		v.Entries = append(v.Entries, dashEntry(es[i]))
	}
	if st.Entries > shown {
		v.MoreEntries = reports.JournalURL(code, "", "", "")
	}
	rets, err := s.reads().FilteredEntries(r.Context(), store.EntryFilter{Books: []string{code}, Kinds: []string{string(ledger.KindRetire)}}, store.FeedPosition{}, 1000)
	if err != nil {
		return nil, err
	}
	for _, e := range rets {
		v.Retirements = append(v.Retirements, dashEntry(e.Entry))
	}
	bs, err := s.reads().SerialBlocks(r.Context(), code)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		v.Serials = append(v.Serials, reports.DashSerial{Registry: b.Registry, Serials: b.Label,
			Tonnes: b.Tonnes.String(), State: b.State, Entry: b.Entry, Vintage: b.Vintage})
	}
	return v, nil
}

func (s *Server) dashPeriod(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error) {
	if err := unscoped(tok, "the period report"); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	today := ledger.Date(s.Now().UTC().Date())
	years := q.Get("years")
	if years == "" {
		years = strconv.Itoa(today.Year())
	}
	fields := map[string]string{"by": q.Get("by"), "fiscal_year_start": q.Get("fiscal_year_start")}
	if strings.Contains(years, "..") {
		fields["years"] = years
	} else {
		fields["year"] = years
	}
	params, err := service.ParseReport("period", fields, today)
	if err != nil {
		return nil, err
	}
	rep, err := service.BuildReport(r.Context(), s.reads(), params)
	if err != nil {
		return nil, err
	}
	pr, ok := rep.(reports.PeriodReport)
	if !ok {
		return nil, fmt.Errorf("dashboard: the period report is a %T", rep)
	}
	v := reports.DashPeriod{DashPage: p, Report: pr, Year: years, FiscalYearStart: params.FiscalYearStart, By: params.By,
		GroupKeys: store.GroupKeys}
	for m := time.January; m <= time.December; m++ {
		v.Months = append(v.Months, m.String())
	}
	v.Title, v.Section = "Periods", "period"
	base := url.Values{}
	for k, val := range fields {
		if val != "" {
			base.Set(k, val)
		}
	}
	v.Downloads = downloads("/v1/reports/period?" + base.Encode() + "&")
	return v, nil
}

func (s *Server) dashAudit(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error) {
	if err := unscoped(tok, "the audit"); err != nil {
		return nil, err
	}
	kept, at, found, err := s.Store.LastKeptResponse(r.Context(), "POST /v1/audit/statements", http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var prior *ledger.Statement
	if found {
		prior = &ledger.Statement{}
		if err := json.Unmarshal(kept.Body, prior); err != nil {
			return nil, fmt.Errorf("dashboard: the kept statement %s: %w", kept.Key, err)
		}
	}
	// One audit: the books' own findings, and whether they extend the last statement.
	out, _, since, err := service.AuditSince(r.Context(), s.reads(), prior, nil)
	if err != nil {
		return nil, err
	}
	v := reports.DashAudit{DashPage: p, OK: out.OK, Entries: out.Entries, Postings: out.Postings, Books: out.Books, Digest: out.Digest,
		KnownAt: out.KnownAt, Findings: out.Findings, RecordedBy: out.RecordedBy, Statement: prior}
	v.Title, v.Section = "Audit", "audit"
	if prior != nil {
		v.StatementWritten, v.StatementSigned = at.Format(time.RFC3339), prior.Signature != nil
		v.Extends = len(since) == 0
		for _, f := range since {
			v.ExtendsFindings = append(v.ExtendsFindings, f.Message)
		}
	}
	return v, nil
}

func (s *Server) dashJournal(w http.ResponseWriter, r *http.Request, tok store.Token, p reports.DashPage) (any, error) {
	q := r.URL.Query()
	var f store.EntryFilter
	var desc []string
	if c := q.Get("contract"); c != "" {
		if err := covers(tok, c); err != nil {
			return nil, err
		}
		f.Books = []string{c}
		desc = append(desc, "contract "+c)
	} else if tok.Contracts != nil {
		f.Books = tok.Contracts
	}
	if k := q.Get("kind"); k != "" {
		f.Kinds = strings.Split(k, ",")
		desc = append(desc, "kind "+strings.Join(f.Kinds, " or ")+" (and their corrections)")
	}
	var err error
	if v := q.Get("from"); v != "" {
		if f.From, err = ledger.ParseDate("from", v); err != nil {
			return nil, err
		}
		desc = append(desc, "effective from "+v)
	}
	if v := q.Get("to"); v != "" {
		if f.To, err = ledger.ParseDate("to", v); err != nil {
			return nil, err
		}
		desc = append(desc, "to "+v)
	}
	var after store.FeedPosition
	if v := q.Get("after"); v != "" {
		b, sq, ok := strings.Cut(v, ":")
		after.Book, _ = strconv.ParseInt(b, 10, 64)
		after.Seq, _ = strconv.ParseInt(sq, 10, 64)
		if !ok || after.Book <= 0 {
			return nil, badCursor(v)
		}
	}
	const shown = 200
	es, err := s.reads().FilteredEntries(r.Context(), f, after, shown+1)
	if err != nil {
		return nil, err
	}
	v := reports.DashJournal{DashPage: p}
	v.Title, v.Section = "Journal", "journal"
	if len(desc) == 0 {
		v.Filter = "Every entry, contract by contract, in chain order."
	} else {
		v.Filter = "Entries of " + strings.Join(desc, ", ") + ", contract by contract, in chain order."
	}
	if len(es) > shown {
		es = es[:shown]
		last := es[len(es)-1]
		next := r.URL.Query()
		next.Set("after", fmt.Sprintf("%d:%d", last.BookID, last.Seq))
		v.More = "/journal?" + next.Encode()
	}
	for _, e := range es {
		v.Entries = append(v.Entries, dashEntry(e.Entry))
	}
	return v, nil
}
