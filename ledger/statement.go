package ledger

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Statement is an audit statement: the totals per contract and per account, the number of
// entries, and the chain heads with their digest, optionally signed with Ed25519. A later
// audit with --since proves the books only grew since: every head it names is still in its
// chain, unchanged, and the totals up to those heads are the same.
type Statement struct {
	Version     int                 `json:"version"`
	GeneratedAt string              `json:"generated_at"`
	KnownAt     string              `json:"known_at"` // the newest recorded time covered
	Entries     int64               `json:"entries"`
	Postings    int64               `json:"postings"`
	Digest      string              `json:"digest"`
	Heads       []ChainHead         `json:"heads"`
	Contracts   []StatementContract `json:"contracts"`
	Accounts    []StatementAccount  `json:"accounts"`
	Signature   *Signature          `json:"signature,omitempty"`
}

// StatementContract is a contract's position in a statement.
type StatementContract struct {
	Code string `json:"code"`
	Position
}

// StatementAccount is an account's balance in a statement.
type StatementAccount struct {
	Account string `json:"account"`
	Balance Tonnes `json:"balance"`
}

// Signature is an Ed25519 signature over the statement's canonical JSON (the statement
// without its signature field).
type Signature struct {
	Algorithm string `json:"algorithm"`  // "ed25519"
	PublicKey string `json:"public_key"` // base64
	Value     string `json:"value"`      // base64
}

// Canonical returns the bytes that are signed: the statement's JSON without its signature,
// its lists sorted.
func (s Statement) Canonical() ([]byte, error) {
	s.Signature = nil
	sort.Slice(s.Heads, func(i, j int) bool { return s.Heads[i].Book < s.Heads[j].Book })
	sort.Slice(s.Contracts, func(i, j int) bool { return s.Contracts[i].Code < s.Contracts[j].Code })
	sort.Slice(s.Accounts, func(i, j int) bool { return s.Accounts[i].Account < s.Accounts[j].Account })
	return json.Marshal(s)
}

// Sign signs the statement with key.
func (s *Statement) Sign(key ed25519.PrivateKey) error {
	b, err := s.Canonical()
	if err != nil {
		return err
	}
	s.Signature = &Signature{Algorithm: "ed25519", PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
		Value: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))}
	return nil
}

// Verify checks the statement's signature, and that it was made with want when want is set.
// An unsigned statement verifies only when no key is wanted.
func (s Statement) Verify(want ed25519.PublicKey) error {
	if s.Signature == nil {
		if want != nil {
			return errors.New("the statement is not signed, but a public key was given to check it with")
		}
		return nil
	}
	if s.Signature.Algorithm != "ed25519" {
		return fmt.Errorf("unknown signature algorithm %q", s.Signature.Algorithm)
	}
	pub, err := base64.StdEncoding.DecodeString(s.Signature.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return errors.New("the statement's public key is malformed")
	}
	if want != nil && !ed25519.PublicKey(pub).Equal(want) {
		return errors.New("the statement was signed with another key than the one given")
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature.Value)
	if err != nil {
		return errors.New("the statement's signature is malformed")
	}
	b, err := s.Canonical()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, b, sig) {
		return errors.New("the signature does not match the statement: it was altered after signing")
	}
	return nil
}

// GenerateKey writes a new Ed25519 key pair: the private key to path (PKCS #8 PEM, mode
// 0600) and the public key to path + ".pub" (PKIX PEM).
func GenerateKey(path string) error {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pb, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: pk}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), 0o644)
}

// LoadPrivateKey reads an Ed25519 private key in PKCS #8 PEM.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// LoadPublicKey reads an Ed25519 public key in PKIX PEM.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: not a PEM public key", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}
