package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/carbonledger/carbonledger/ledger"
)

// dbErr maps err and says which step failed.
func dbErr(step string, err error) error {
	if step == "" {
		return mapErr(err)
	}
	return fmt.Errorf("%s: %w", step, mapErr(err))
}

// Roles are what an API token may do, each including the one before: a viewer reads; a
// recorder also records operations under contracts; an admin also adds and amends contracts.
var Roles = []string{"viewer", "recorder", "admin"}

// TokenPrefix starts every token, so a leaked one is easy to recognise in logs and scanners.
const TokenPrefix = "clt_"

// Token is an API token as kept: never its secret, which is shown once when it is created.
type Token struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Contracts []string   `json:"contracts,omitempty"` // nil: every contract
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Can reports whether the token's role includes role.
func (t Token) Can(role string) bool {
	return slices.Index(Roles, t.Role) >= slices.Index(Roles, role) && slices.Contains(Roles, role)
}

// Covers reports whether the token may act on the contract code.
func (t Token) Covers(code string) bool {
	return t.Contracts == nil || slices.Contains(t.Contracts, code)
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CreateToken keeps a new token and returns its secret, which is not kept: only its SHA-256
// is. contracts, when not empty, limits the token to those contracts, which must exist. A
// name is never reused, even after its token was revoked.
func (s *Store) CreateToken(ctx context.Context, name, role string, contracts []string) (string, error) {
	if !tokenName.MatchString(name) {
		return "", ledger.Invalid("name", name, "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	if !slices.Contains(Roles, role) {
		return "", ledger.Invalid("role", role, "is not a role ("+strings.Join(Roles, ", ")+")")
	}
	var scope any // NULL: every contract
	if len(contracts) > 0 {
		var known []string
		if err := s.db.SelectContext(ctx, &known, `SELECT code FROM contracts WHERE code = ANY($1)`, pq.Array(contracts)); err != nil {
			return "", dbErr("check the token's contracts", err)
		}
		for _, c := range contracts {
			if !slices.Contains(known, c) {
				return "", &ledger.FieldError{Field: "contract", Value: c, Rule: "is not a contract", Kind: ledger.ErrNotFound}
			}
		}
		scope = pq.Array(contracts)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (name, role, contracts, token_sha256) VALUES ($1, $2, $3, $4)`,
		name, role, scope, sum[:])
	if err != nil {
		if errors.Is(dbErr("", err), ledger.ErrConflict) {
			return "", &ledger.FieldError{Field: "name", Value: name, Rule: "is already the name of a token (names are never reused)", Kind: ledger.ErrConflict}
		}
		return "", dbErr("keep the token", err)
	}
	return secret, nil
}

type tokenRow struct {
	Name      string         `db:"name"`
	Role      string         `db:"role"`
	Contracts pq.StringArray `db:"contracts"`
	CreatedAt time.Time      `db:"created_at"`
	RevokedAt sql.NullTime   `db:"revoked_at"`
}

func (r tokenRow) token() Token {
	t := Token{Name: r.Name, Role: r.Role, CreatedAt: r.CreatedAt.UTC()}
	if r.Contracts != nil {
		t.Contracts = []string(r.Contracts)
	}
	if r.RevokedAt.Valid {
		at := r.RevokedAt.Time.UTC()
		t.RevokedAt = &at
	}
	return t
}

const tokenColumns = `name, role, contracts, created_at, revoked_at`

// Tokens lists every token, revoked ones too, by name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	var rows []tokenRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY name`); err != nil {
		return nil, dbErr("list tokens", err)
	}
	out := make([]Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// RevokeToken revokes the named token from now on. Revoking a revoked token changes nothing.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL`, name)
	if err != nil {
		return dbErr("revoke the token", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists bool
		if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = $1)`, name); err != nil {
			return dbErr("revoke the token", err)
		}
		if !exists {
			return &ledger.FieldError{Field: "name", Value: name, Rule: "is not a token", Kind: ledger.ErrNotFound}
		}
	}
	return nil
}

// TokenBySecret finds the token whose secret this is, revoked or not (the caller refuses a
// revoked one); ErrNotFound when there is none.
func (s *Store) TokenBySecret(ctx context.Context, secret string) (Token, error) {
	sum := sha256.Sum256([]byte(secret))
	var r tokenRow
	q := `SELECT ` + tokenColumns + ` FROM api_tokens WHERE token_sha256 = $1`
	err := s.db.GetContext(ctx, &r, q, sum[:])
	if err != nil && s.dropIdle(err) && ctx.Err() == nil {
		// Every API request starts here: after a restart of the database, the first one
		// finds the pool's connections dead, and asks again on a fresh one.
		err = s.db.GetContext(ctx, &r, q, sum[:])
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ledger.ErrNotFound
	}
	if err != nil {
		return Token{}, dbErr("find the token", err)
	}
	return r.token(), nil
}

// KeptResponse is an API answer kept for good under its Idempotency-Key.
type KeptResponse struct {
	Key     string `db:"idempotency_key"`
	Route   string `db:"route"`
	Token   string `db:"token_name"`
	Request []byte `db:"request_sha256"`
	Status  int    `db:"status"`
	Body    []byte `db:"body"`
}

// KeptResponseFor returns the response kept under key, if any.
func (s *Store) KeptResponseFor(ctx context.Context, key string) (KeptResponse, bool, error) {
	var r KeptResponse
	err := s.db.GetContext(ctx, &r, `SELECT idempotency_key, route, token_name, request_sha256, status, body FROM api_responses WHERE idempotency_key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, dbErr("read the kept response", err)
	}
	return r, true, nil
}

// KeepResponse keeps r; when another request kept one under the same key first, it returns
// that one instead (and false).
// It writes as the writer role, as every write of the server does.
func (s *Store) KeepResponse(ctx context.Context, r KeptResponse) (KeptResponse, bool, error) {
	var n int64
	err := s.write(ctx, "keep the response", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO api_responses (idempotency_key, route, token_name, request_sha256, status, body)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING`, r.Key, r.Route, r.Token, r.Request, r.Status, r.Body)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return r, false, err
	}
	if n == 1 {
		return r, true, nil
	}
	prior, _, err := s.KeptResponseFor(ctx, r.Key)
	return prior, false, err
}

// LastKeptResponse is the newest answer kept for route with status, and when it was kept.
func (s *Store) LastKeptResponse(ctx context.Context, route string, status int) (KeptResponse, time.Time, bool, error) {
	var r struct {
		KeptResponse
		At time.Time `db:"created_at"`
	}
	err := s.db.GetContext(ctx, &r, `SELECT idempotency_key, route, token_name, request_sha256, status, body, created_at
		FROM api_responses WHERE route = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1`, route, status)
	if errors.Is(err, sql.ErrNoRows) {
		return KeptResponse{}, time.Time{}, false, nil
	}
	if err != nil {
		return KeptResponse{}, time.Time{}, false, dbErr("read the last kept response", err)
	}
	return r.KeptResponse, r.At.UTC(), true, nil
}

// TokenByName finds a token by its name, revoked or not; ErrNotFound when there is none.
func (s *Store) TokenByName(ctx context.Context, name string) (Token, error) {
	var r tokenRow
	err := s.db.GetContext(ctx, &r, `SELECT `+tokenColumns+` FROM api_tokens WHERE name = $1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ledger.ErrNotFound
	}
	if err != nil {
		return Token{}, dbErr("find the token", err)
	}
	return r.token(), nil
}

// KeyTaken reports whether an entry of the journal holds the idempotency key.
func (s *Store) KeyTaken(ctx context.Context, key string) (bool, error) {
	var taken bool
	if err := s.db.GetContext(ctx, &taken, `SELECT EXISTS (SELECT 1 FROM entries WHERE idempotency_key = $1)`, key); err != nil {
		return false, dbErr("look the key up", err)
	}
	return taken, nil
}

// ErrTokenRevoked refuses a write whose API token was revoked (or is gone) by the time the
// write's own transaction looked (WithToken).
var ErrTokenRevoked = errors.New("the token was revoked")

type tokenKey struct{}

// WithToken returns ctx asking the store to check, in the transaction of each operation
// written under it, that the API token name is still active, and to refuse the operation
// with ErrTokenRevoked when it is not: the API may then have authenticated the request with
// a token it kept rather than read it again. (Operations under a contract, through Submit.)
func WithToken(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, tokenKey{}, name)
}

func tokenOf(ctx context.Context) string {
	name, _ := ctx.Value(tokenKey{}).(string)
	return name
}

func tokenRevoked(name string) error {
	return fmt.Errorf("the token %s was revoked: %w", name, ErrTokenRevoked)
}
