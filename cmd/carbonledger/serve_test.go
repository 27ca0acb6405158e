package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is stderr shared by the server's goroutines and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe runs `carbonledger serve` as a user would: tokens from the CLI, a contract and
// a delivery over HTTP, the same contract JSON as `contract show`, a revoked token refused,
// and a shutdown that lets the request in flight finish.
func TestServe(t *testing.T) {
	c := newCLI(t)
	admin := strings.TrimSpace(c.ok("token", "create", "--name", "ops", "--role", "admin"))
	if !strings.HasPrefix(admin, "clt_") || strings.Contains(admin, " ") {
		t.Fatalf("token create printed %q, want the token alone", admin)
	}
	c.fails(1, []string{"token", "create", "--name", "ops", "--role", "viewer"}, "name", "never reused")
	c.fails(1, []string{"token", "create", "--name", "x", "--role", "owner"}, "--role", "is not a role")
	c.fails(2, []string{"token", "create", "--name", "x"}, "--name and --role")
	list := c.ok("token", "list", "--format", "json")
	if !strings.Contains(list, `"name": "ops"`) || strings.Contains(list, "clt_") {
		t.Errorf("token list holds no secret and names ops:\n%s", list)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	listening = func(a string) { addrs <- a }
	defer func() { listening = func(string) {} }()
	stderr := &syncBuf{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", c.url}, io.Discard, stderr)
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a
	case code := <-exited:
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	call := func(method, path, token, key, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	doc, err := os.ReadFile("testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var code struct{ Code string }
	json.Unmarshal(doc, &code)
	if st, body := call("POST", "/v1/contracts", admin, "sign-1", string(doc)); st != 201 {
		t.Fatalf("POST /v1/contracts: %d %s", st, body)
	}
	if st, body := call("POST", "/v1/contracts/"+code.Code+"/deliveries", admin, "d-1", `{"tonnes":"12.5","date":"2025-03-01"}`); st != 201 {
		t.Fatalf("POST deliveries: %d %s", st, body)
	}
	_, apiView := call("GET", "/v1/contracts/"+code.Code, admin, "", "")
	cliView := c.ok("contract", "show", code.Code, "--format", "json")
	var a, b any
	if json.Unmarshal(apiView, &a) != nil || json.Unmarshal([]byte(cliView), &b) != nil || !jsonEqual(a, b) {
		t.Errorf("GET /v1/contracts/%s is not contract show --format json:\n%s\n%s", code.Code, apiView, cliView)
	}

	viewer := strings.TrimSpace(c.ok("token", "create", "--name", "auditor", "--role", "viewer"))
	if st, _ := call("GET", "/v1/audit", viewer, "", ""); st != 200 {
		t.Errorf("viewer GET /v1/audit = %d", st)
	}
	c.ok("token", "revoke", "auditor")
	if st, body := call("GET", "/v1/audit", viewer, "", ""); st != 401 {
		t.Errorf("revoked token: %d %s, want 401", st, body)
	}

	// A delivery waits on the contract's lock, held here; the server is told to stop; the
	// delivery still completes, and then the server exits 0.
	tx, err := c.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT 1 FROM books WHERE code = $1 FOR UPDATE`, code.Code); err != nil {
		t.Fatal(err)
	}
	slow := make(chan int, 1)
	go func() {
		st, _ := call("POST", "/v1/contracts/"+code.Code+"/deliveries", admin, "d-2", `{"tonnes":"1","date":"2025-03-02"}`)
		slow <- st
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	time.Sleep(300 * time.Millisecond)
	tx.Rollback()
	if st := <-slow; st != 201 {
		t.Errorf("the delivery in flight at shutdown ended %d, want 201", st)
	}
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d after the shutdown, want 0: %s", code, stderr.String())
	}
	log := stderr.String()
	if !strings.Contains(log, `"token":"ops"`) || !strings.Contains(log, `"msg":"request"`) || strings.Contains(log, "clt_") {
		t.Errorf("the access log should name tokens, never hold one:\n%s", log)
	}
	if j := c.ok("journal", code.Code); !strings.Contains(j, "(by token:ops)") {
		t.Errorf("the journal does not say the API's entries were written by token ops:\n%s", j)
	}
	c.ok("deliver", "--contract", code.Code, "--tonnes", "1", "--date", "2025-03-03")
	if a := c.ok("audit"); !strings.Contains(a, "token:ops 3") || !strings.Contains(a, "user:"+osUser()+" 1") {
		t.Errorf("the audit does not count the entries by who wrote them:\n%s", a)
	}
	if !strings.Contains(c.ok("contract", "show", code.Code), "14.500") {
		t.Error("the three deliveries (12.5 t, 1 t and 1 t) are not in the position")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestServeTLS: given a certificate and key, serve speaks HTTPS and nothing else.
func TestServeTLS(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	listening = func(a string) { addrs <- a }
	defer func() { listening = func(string) {} }()
	exited := make(chan int, 1)
	stderr := &syncBuf{}
	go func() {
		exited <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--db", c.url}, io.Discard, stderr)
	}()
	var addr string
	select {
	case addr = <-addrs:
	case code := <-exited:
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET https://%s/healthz: %v", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}
	if !strings.Contains(stderr.String(), `"url":"https://`) {
		t.Errorf("the log does not say https: %s", stderr.String())
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d", code)
	}
}
