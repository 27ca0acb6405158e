package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testBook    = "TN150-2024"
	testOpen    = "contract:TN150-2024:open"
	testHolding = "buyer:microsoft:holding:TN150-2024"
)

// validEntry returns a fresh, valid delivery entry; every call builds new maps and slices so a
// test may change one without touching another.
func validEntry() Entry {
	return Entry{
		ID:          "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
		Book:        testBook,
		Kind:        KindDeliver,
		EffectiveOn: Date(2025, 3, 1),
		Key:         "k1",
		Request:     []byte{0xde, 0xad},
		Description: "Delivery <&>",
		Vintage:     2024,
		Metadata:    map[string]string{"note": "n", "contract_year": "1"},
		Postings:    []Posting{{testOpen, tn("-10")}, {testHolding, tn("10")}},
	}
}

func TestEntryValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Entry)
		field  string // "" when the entry is valid
		frags  []string
	}{
		{"balanced", func(e *Entry) {}, "", nil},
		{"three postings balanced", func(e *Entry) {
			e.Postings = []Posting{{testOpen, tn("-10")}, {testHolding, tn("7.5")}, {"buyer:microsoft:retired:TN150-2024", tn("2.5")}}
		}, "", nil},
		{"no metadata", func(e *Entry) { e.Metadata = nil }, "", nil},
		{"32 metadata keys", func(e *Entry) {
			e.Metadata = map[string]string{}
			for i := range 32 {
				e.Metadata[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "", nil},
		{"64 postings", func(e *Entry) { e.Postings = fanOut(63) }, "", nil},
		{"key of 200 bytes", func(e *Entry) { e.Key = strings.Repeat("k", 200) }, "", nil},
		{"description of 1000 bytes", func(e *Entry) { e.Description = strings.Repeat("d", 1000) }, "", nil},
		{"unicode description", func(e *Entry) { e.Description = "Entrega: 10 t CO₂e, Conhuás ejido" }, "", nil},

		{"unbalanced", func(e *Entry) { e.Postings[1].Amount = tn("9") }, "postings",
			[]string{`"-1.000"`, "is the sum of the postings; an entry must balance to exactly 0.000"}},
		{"unbalanced by one kg", func(e *Entry) { e.Postings[1].Amount = tn("10.001") }, "postings", []string{`"0.001"`, "must balance"}},
		{"unbalanced three", func(e *Entry) {
			e.Postings = append(e.Postings, Posting{"buyer:microsoft:retired:TN150-2024", tn("2.5")})
		}, "postings", []string{`"2.500"`}},
		{"one posting", func(e *Entry) { e.Postings = e.Postings[:1] }, "postings", []string{`"1"`, "an entry needs at least two"}},
		{"no postings", func(e *Entry) { e.Postings = nil }, "postings", []string{`"0"`, "an entry needs at least two"}},
		{"65 postings", func(e *Entry) { e.Postings = fanOut(64) }, "postings", []string{`"65"`, "at most 64"}},
		{"zero posting", func(e *Entry) {
			e.Postings = append(e.Postings, Posting{"buyer:microsoft:retired:TN150-2024", Zero})
		}, "postings[2].amount", []string{`"0.000"`, "is zero; a posting must move something"}},
		{"duplicate account", func(e *Entry) { e.Postings[1].Account = testOpen; e.Postings[1].Amount = tn("10") },
			"postings[1].account", []string{testOpen, "appears twice"}},
		{"account upper-case first part", func(e *Entry) { e.Postings[0].Account = "Contract:TN150-2024:open" },
			"postings[0].account", []string{"is not an account code"}},
		{"account one part", func(e *Entry) { e.Postings[0].Account = "contract" }, "postings[0].account", []string{"is not an account code"}},
		{"account empty part", func(e *Entry) { e.Postings[1].Account = "buyer::holding" }, "postings[1].account", []string{"is not an account code"}},
		{"account with space", func(e *Entry) { e.Postings[0].Account = "contract:TN150 2024:open" }, "postings[0].account", nil},
		{"account with dot", func(e *Entry) { e.Postings[0].Account = "contract:TN150.2024:open" }, "postings[0].account", nil},
		{"account trailing colon", func(e *Entry) { e.Postings[0].Account = "contract:TN150-2024:" }, "postings[0].account", nil},
		{"account empty", func(e *Entry) { e.Postings[0].Account = "" }, "postings[0].account", nil},
		{"account too long", func(e *Entry) { e.Postings[0].Account = "contract:" + strings.Repeat("a", 192) }, "postings[0].account", []string{"at most 200 characters"}},
		{"empty key", func(e *Entry) { e.Key = "" }, "key", []string{"is required: every write carries an idempotency key"}},
		{"key too long", func(e *Entry) { e.Key = strings.Repeat("k", 201) }, "key", []string{"is too long (201 bytes, at most 200)"}},
		{"key not UTF-8", func(e *Entry) { e.Key = "k\xff" }, "key", []string{"is not valid UTF-8"}},
		{"unknown kind", func(e *Entry) { e.Kind = "gift" }, "kind",
			[]string{`"gift"`, "is not an entry kind (open, transfer, sign, amend, deliver, retire, cancel, reverse, revert)"}},
		{"empty kind", func(e *Entry) { e.Kind = "" }, "kind", []string{"is not an entry kind"}},
		{"upper-case kind", func(e *Entry) { e.Kind = "Deliver" }, "kind", nil},
		{"zero date", func(e *Entry) { e.EffectiveOn = time.Time{} }, "date", []string{"is required"}},
		{"empty book", func(e *Entry) { e.Book = "" }, "book", nil},
		{"bad book", func(e *Entry) { e.Book = "TN150 2024" }, "book", []string{"must be 1 to 48 letters, digits or '-'"}},
		{"invalid UTF-8 description", func(e *Entry) { e.Description = "Delivery \xff\xfe" }, "description", []string{"is not valid UTF-8"}},
		{"NUL in description", func(e *Entry) { e.Description = "Delivery\x00" }, "description", []string{"contains a NUL character"}},
		{"description too long", func(e *Entry) { e.Description = strings.Repeat("d", 1001) }, "description", []string{"is too long (1001 bytes, at most 1000)"}},
		{"33 metadata keys", func(e *Entry) {
			e.Metadata = map[string]string{}
			for i := range 33 {
				e.Metadata[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "metadata", []string{"has 33 keys, at most 32"}},
		{"metadata key upper-case", func(e *Entry) { e.Metadata["Note"] = "x" }, "metadata", []string{`"Note"`, "is not a metadata key"}},
		{"metadata key starts with digit", func(e *Entry) { e.Metadata["1note"] = "x" }, "metadata", []string{`"1note"`}},
		{"metadata key with dash", func(e *Entry) { e.Metadata["registry-tx"] = "x" }, "metadata", []string{`"registry-tx"`}},
		{"metadata key empty", func(e *Entry) { e.Metadata[""] = "x" }, "metadata", []string{"is not a metadata key"}},
		{"metadata key 41 chars", func(e *Entry) { e.Metadata["a"+strings.Repeat("b", 40)] = "x" }, "metadata", nil},
		{"metadata value not UTF-8", func(e *Entry) { e.Metadata["note"] = "\xff" }, "metadata.note", []string{"is not valid UTF-8"}},
		{"metadata value NUL", func(e *Entry) { e.Metadata["note"] = "a\x00b" }, "metadata.note", []string{"NUL"}},
		{"metadata value too long", func(e *Entry) { e.Metadata["note"] = strings.Repeat("v", 4001) }, "metadata.note", []string{"at most 4000"}},
		{"amend without postings", func(e *Entry) { e.Kind = KindAmend; e.Postings = nil }, "", nil},
		{"amend with empty postings", func(e *Entry) { e.Kind = KindAmend; e.Postings = []Posting{} }, "", nil},
		{"amend with one posting", func(e *Entry) { e.Kind = KindAmend; e.Postings = e.Postings[:1] }, "postings", []string{"at least two"}},
	}
	for _, k := range Kinds {
		if k == KindAmend {
			continue
		}
		tests = append(tests, struct {
			name   string
			change func(*Entry)
			field  string
			frags  []string
		}{"zero postings " + string(k), func(e *Entry) { e.Kind = k; e.Postings = nil }, "postings", []string{"at least two"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEntry()
			tt.change(&e)
			err := e.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			wantFieldError(t, err, tt.field, ErrInvalid, tt.frags...)
		})
	}
}

// fanOut returns n+1 balanced postings: n accounts receiving 1 t each from one source.
func fanOut(n int) []Posting {
	ps := []Posting{{"supplier:s:supply:X", TonnesFromKg(int64(-1000 * n))}}
	for i := range n {
		ps = append(ps, Posting{fmt.Sprintf("buyer:b%d:holding:X", i), tn("1")})
	}
	return ps
}

func TestValidateAccountCodeAndCode(t *testing.T) {
	for _, code := range []string{"contract:TN150-2024:open", "buyer:microsoft:holding:TN150-2024", "registry:gold-standard:buffer-cancelled:X1",
		"a:b", "supplier:the-next-150:supply:TN150-2024", "x1:Y_z"} {
		if err := ValidateAccountCode(code); err != nil {
			t.Errorf("ValidateAccountCode(%q): got %v, want nil", code, err)
		}
	}
	for _, code := range []string{"", "a", "A:b", "-a:b", "a:", "a::b", "a:_b", "a:b c", "a:b.c", "a:é", ":a"} {
		wantFieldError(t, ValidateAccountCode(code), "account", ErrInvalid, "is not an account code")
	}
	for _, code := range []string{"TN150-2024", "T", "0", strings.Repeat("a", 48), "Toroto-2024"} {
		if err := ValidateCode("code", code); err != nil {
			t.Errorf("ValidateCode(%q): got %v, want nil", code, err)
		}
	}
	for _, code := range []string{"", "-x", "a_b", "a b", "a:b", "a.b", strings.Repeat("a", 49), "é"} {
		wantFieldError(t, ValidateCode("code", code), "code", ErrInvalid, "must be 1 to 48 letters, digits or '-'")
	}
}

func TestKinds(t *testing.T) {
	for _, k := range []Kind{KindOpen, KindSign, KindAmend, KindDeliver, KindRetire, KindCancel, KindReverse, KindRevert, KindTransfer} {
		if !k.Valid() {
			t.Errorf("Kind(%q).Valid(): got false, want true", k)
		}
	}
	for _, k := range []Kind{"", "gift", "DELIVER", "buffer"} {
		if k.Valid() {
			t.Errorf("Kind(%q).Valid(): got true, want false", k)
		}
	}
	neg := map[AccountKind]bool{AccSupply: true, AccBuffer: true, AccEquity: true}
	for _, k := range AccountKinds {
		if !k.Valid() {
			t.Errorf("AccountKind(%q).Valid(): got false, want true", k)
		}
		if got := k.MayGoNegative(); got != neg[k] {
			t.Errorf("AccountKind(%q).MayGoNegative(): got %v, want %v", k, got, neg[k])
		}
	}
	if AccountKind("wallet").Valid() {
		t.Errorf(`AccountKind("wallet").Valid(): got true, want false`)
	}
}

// sealedEntry returns validEntry sealed at seq 1 after the genesis hash.
func sealedEntry(t *testing.T) Entry {
	t.Helper()
	e := validEntry()
	if err := e.Seal(1, GenesisHash, time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.UTC)); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return e
}

// TestCanonicalV1Golden pins the canonical form of hash version 1. Every hash ever written
// depends on these bytes: if this test fails, existing chains no longer verify. Add a new
// hash version instead of changing version 1.
func TestCanonicalV1Golden(t *testing.T) {
	e := sealedEntry(t)
	got, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","book":"TN150-2024","seq":1,"kind":"deliver",` +
		`"effective_on":"2025-03-01","recorded_at":"2025-03-01T12:30:45.123456Z","key":"k1","request":"dead",` +
		`"description":"Delivery <&>","reverts":"","vintage":2024,"metadata":{"contract_year":"1","note":"n"},` +
		`"postings":[["buyer:microsoft:holding:TN150-2024","10.000"],["contract:TN150-2024:open","-10.000"]],` +
		`"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`
	if string(got) != want {
		t.Errorf("Canonical:\n got %s\nwant %s", got, want)
	}
	sum := sha256.Sum256([]byte(want))
	if !bytes.Equal(e.Hash, sum[:]) {
		t.Errorf("Hash: got %x, want sha256 of the canonical form %x", e.Hash, sum)
	}
	if e.HashVersion != HashVersion || HashVersion != 1 {
		t.Errorf("HashVersion: got entry %d, constant %d, want 1", e.HashVersion, HashVersion)
	}
}

func TestSealThenCheckLink(t *testing.T) {
	e := sealedEntry(t)
	if got := CheckLink(e, 1, GenesisHash); got != "" {
		t.Errorf("CheckLink of a freshly sealed entry: got %q, want \"\"", got)
	}
	if e.Seq != 1 || !bytes.Equal(e.PrevHash, GenesisHash) || len(e.Hash) != sha256.Size {
		t.Errorf("Seal: got seq %d prev %x hash %x, want seq 1, genesis, a 32-byte hash", e.Seq, e.PrevHash, e.Hash)
	}
	// Seal keeps its own copy of prev.
	prev := bytes.Repeat([]byte{7}, 32)
	f := validEntry()
	if err := f.Seal(2, prev, time.Now()); err != nil {
		t.Fatal(err)
	}
	prev[0] = 8
	if f.PrevHash[0] != 7 {
		t.Errorf("Seal aliases the caller's prev slice: got PrevHash[0]=%d, want 7", f.PrevHash[0])
	}
}

func TestCheckLinkDetectsEveryChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Entry)
		want   string // a fragment of the problem
	}{
		{"ID", func(e *Entry) { e.ID = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c" }, "content no longer matches"},
		{"Book", func(e *Entry) { e.Book = "TF-2024" }, "content no longer matches"},
		{"Seq", func(e *Entry) { e.Seq = 2 }, "sequence 2 where 1 was expected"},
		{"Kind", func(e *Entry) { e.Kind = KindRetire }, "content no longer matches"},
		{"EffectiveOn", func(e *Entry) { e.EffectiveOn = e.EffectiveOn.AddDate(0, 0, 1) }, "content no longer matches"},
		{"RecordedAt", func(e *Entry) { e.RecordedAt = e.RecordedAt.Add(time.Microsecond) }, "content no longer matches"},
		{"RecordedAt by a second", func(e *Entry) { e.RecordedAt = e.RecordedAt.Add(-time.Second) }, "content no longer matches"},
		{"Key", func(e *Entry) { e.Key = "k2" }, "content no longer matches"},
		{"Request", func(e *Entry) { e.Request = []byte{0xde, 0xae} }, "content no longer matches"},
		{"Request removed", func(e *Entry) { e.Request = nil }, "content no longer matches"},
		{"Description", func(e *Entry) { e.Description = "Delivery <&>." }, "content no longer matches"},
		{"Reverts", func(e *Entry) { e.Reverts = "0190a1b2-0000-7000-8000-000000000000" }, "content no longer matches"},
		{"Vintage", func(e *Entry) { e.Vintage = 2025 }, "content no longer matches"},
		{"metadata value", func(e *Entry) { e.Metadata["note"] = "m" }, "content no longer matches"},
		{"metadata key added", func(e *Entry) { e.Metadata["late"] = "true" }, "content no longer matches"},
		{"metadata key removed", func(e *Entry) { delete(e.Metadata, "note") }, "content no longer matches"},
		{"metadata key renamed", func(e *Entry) { delete(e.Metadata, "note"); e.Metadata["notes"] = "n" }, "content no longer matches"},
		{"posting amounts", func(e *Entry) { e.Postings[0].Amount = tn("-10.001"); e.Postings[1].Amount = tn("10.001") }, "content no longer matches"},
		{"one posting amount", func(e *Entry) { e.Postings[1].Amount = tn("11") }, "content no longer matches"},
		{"posting account", func(e *Entry) { e.Postings[1].Account = "buyer:microsoft:retired:TN150-2024" }, "content no longer matches"},
		{"posting removed", func(e *Entry) { e.Postings = e.Postings[:1] }, "content no longer matches"},
		{"posting added", func(e *Entry) { e.Postings = append(e.Postings, Posting{"a:b", tn("1")}) }, "content no longer matches"},
		{"PrevHash", func(e *Entry) { e.PrevHash = bytes.Repeat([]byte{1}, 32) }, "previous hash does not match"},
		{"Hash", func(e *Entry) { e.Hash[0] ^= 1 }, "content no longer matches"},
		{"HashVersion", func(e *Entry) { e.HashVersion = 2 }, "unknown hash version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sealedEntry(t)
			tt.change(&e)
			got := CheckLink(e, 1, GenesisHash)
			if got == "" || !strings.Contains(got, tt.want) {
				t.Errorf("CheckLink after changing %s: got %q, want a problem containing %q", tt.name, got, tt.want)
			}
		})
	}
	// The chain position is checked against what the walk expects, too.
	e := sealedEntry(t)
	if got := CheckLink(e, 2, GenesisHash); !strings.Contains(got, "sequence 1 where 2 was expected") {
		t.Errorf("CheckLink(wantSeq 2): got %q, want a sequence problem", got)
	}
	if got := CheckLink(e, 1, bytes.Repeat([]byte{1}, 32)); !strings.Contains(got, "previous hash does not match") {
		t.Errorf("CheckLink(other prev): got %q, want a previous-hash problem", got)
	}
}

func TestCheckLinkChainWalk(t *testing.T) {
	var chain []Entry
	prev := GenesisHash
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		e := validEntry()
		e.ID = NewID()
		e.Key = fmt.Sprintf("k%d", i)
		if err := e.Seal(int64(i+1), prev, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		chain = append(chain, e)
		prev = e.Hash
	}
	walk := func(es []Entry) []string {
		var problems []string
		prev := GenesisHash
		for i, e := range es {
			if p := CheckLink(e, int64(i+1), prev); p != "" {
				problems = append(problems, fmt.Sprintf("entry %d: %s", i+1, p))
			}
			prev = e.Hash
		}
		return problems
	}
	if got := walk(chain); got != nil {
		t.Errorf("walk of an intact chain: got %q, want no problems", got)
	}
	if got := walk(slices.Delete(slices.Clone(chain), 2, 3)); got == nil {
		t.Errorf("walk with entry 3 removed: got no problems, want some")
	}
	swapped := slices.Clone(chain)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	if got := walk(swapped); got == nil {
		t.Errorf("walk with entries 2 and 3 swapped: got no problems, want some")
	}
	// Re-sealing an altered entry does not help: its successor names the old hash.
	forged := slices.Clone(chain)
	forged[1].Description = "forged"
	if err := forged[1].Seal(2, forged[0].Hash, forged[1].RecordedAt); err != nil {
		t.Fatal(err)
	}
	got := walk(forged)
	if len(got) != 1 || !strings.HasPrefix(got[0], "entry 3: its previous hash does not match") {
		t.Errorf("walk with entry 2 re-sealed: got %q, want exactly entry 3's previous hash to mismatch", got)
	}
}

func TestCanonicalIndependentOfOrder(t *testing.T) {
	a := validEntry()
	a.Postings = []Posting{{testOpen, tn("-10")}, {testHolding, tn("7")}, {"buyer:microsoft:retired:TN150-2024", tn("3")}}
	a.Metadata = map[string]string{}
	b := validEntry()
	b.Postings = []Posting{{"buyer:microsoft:retired:TN150-2024", tn("3")}, {testOpen, tn("-10.000")}, {testHolding, tn("7.0")}}
	b.Metadata = map[string]string{}
	keys := []string{"zeta", "alpha", "mid", "beta", "contract_year", "note", "a1", "z9"}
	for i, k := range keys {
		a.Metadata[k] = fmt.Sprint(i)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		b.Metadata[keys[i]] = fmt.Sprint(i)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range []*Entry{&a, &b} {
		if err := e.Seal(1, GenesisHash, at); err != nil {
			t.Fatal(err)
		}
	}
	ca, _ := a.Canonical()
	cb, _ := b.Canonical()
	if !bytes.Equal(ca, cb) || !bytes.Equal(a.Hash, b.Hash) {
		t.Errorf("canonical forms differ by posting or metadata order:\n%s\n%s", ca, cb)
	}
	// Canonical is deterministic over many calls (map iteration order is random).
	for range 50 {
		c, _ := a.Canonical()
		if !bytes.Equal(c, ca) {
			t.Fatalf("Canonical is not deterministic:\n%s\n%s", c, ca)
		}
	}
	// Canonical does not reorder the entry's own postings.
	if b.Postings[0].Account != "buyer:microsoft:retired:TN150-2024" {
		t.Errorf("Canonical reordered the entry's postings: got %v first", b.Postings[0])
	}
	// nil and empty metadata are the same content.
	n, m := validEntry(), validEntry()
	n.Metadata, m.Metadata = nil, map[string]string{}
	cn, cm := sealedCanonical(t, n), sealedCanonical(t, m)
	if !bytes.Equal(cn, cm) {
		t.Errorf("nil and empty metadata: got different canonical forms\n%s\n%s", cn, cm)
	}
}

// sealedCanonical seals e (a copy) at a fixed position and returns its canonical form.
func sealedCanonical(t *testing.T, e Entry) []byte {
	t.Helper()
	if err := e.Seal(1, GenesisHash, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	b, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealRecordedAtMicroseconds(t *testing.T) {
	e := validEntry()
	at := time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CST", -6*3600))
	if err := e.Seal(1, GenesisHash, at); err != nil {
		t.Fatal(err)
	}
	if got, want := e.RecordedAt, time.Date(2025, 3, 1, 18, 30, 45, 123456000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("RecordedAt: got %v, want %v in UTC (PostgreSQL keeps microseconds)", got, want)
	}
	// The same instant, given in UTC or with the lost nanoseconds, seals to the same hash: what
	// PostgreSQL hands back verifies.
	f := validEntry()
	if err := f.Seal(1, GenesisHash, time.Date(2025, 3, 1, 18, 30, 45, 123456000, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Hash, f.Hash) {
		t.Errorf("hash depends on sub-microsecond time or zone: got %x and %x", e.Hash, f.Hash)
	}
	// A stored entry read back in another zone still verifies.
	g := e
	g.RecordedAt = e.RecordedAt.In(time.FixedZone("X", 3*3600))
	if got := CheckLink(g, 1, GenesisHash); got != "" {
		t.Errorf("CheckLink with RecordedAt in another zone: got %q, want \"\"", got)
	}
}

func TestCanonicalUnknownVersion(t *testing.T) {
	e := validEntry() // never sealed: HashVersion 0
	if _, err := e.Canonical(); err == nil || !strings.Contains(err.Error(), "unknown hash version 0") {
		t.Errorf("Canonical of version 0: got %v, want an unknown-version error", err)
	}
	if _, err := e.ComputeHash(); err == nil {
		t.Errorf("ComputeHash of version 0: got nil error, want one")
	}
}

func TestLedgerDigest(t *testing.T) {
	heads := []ChainHead{
		{Book: "TN150-2024", Seq: 12, Hash: strings.Repeat("a", 64)},
		{Book: "TOROTO-2024", Seq: 4, Hash: strings.Repeat("b", 64)},
		{Book: "ACME-1", Seq: 1, Hash: strings.Repeat("c", 64)},
		{Book: "Z", Seq: 99, Hash: strings.Repeat("d", 64)},
	}
	want := LedgerDigest(heads)
	if len(want) != 64 {
		t.Fatalf("LedgerDigest: got %q, want 64 hex digits", want)
	}
	if _, err := hex.DecodeString(want); err != nil {
		t.Fatalf("LedgerDigest: got %q, not hex: %v", want, err)
	}
	// Every order of the heads gives the same digest.
	perm := slices.Clone(heads)
	var permute func(k int)
	n := 0
	permute = func(k int) {
		if k == len(perm) {
			n++
			if got := LedgerDigest(perm); got != want {
				t.Errorf("LedgerDigest(%v): got %s, want %s", perm, got, want)
			}
			return
		}
		for i := k; i < len(perm); i++ {
			perm[k], perm[i] = perm[i], perm[k]
			permute(k + 1)
			perm[k], perm[i] = perm[i], perm[k]
		}
	}
	permute(0)
	if n != 24 {
		t.Errorf("permutations checked: got %d, want 24", n)
	}
	// LedgerDigest does not reorder the caller's slice.
	if heads[0].Book != "TN150-2024" {
		t.Errorf("LedgerDigest sorted the caller's slice: got %q first", heads[0].Book)
	}
	// Any change to any head changes the digest.
	seen := map[string]string{want: "original"}
	for i := range heads {
		for name, change := range map[string]func(*ChainHead){
			"book": func(h *ChainHead) { h.Book += "X" },
			"seq":  func(h *ChainHead) { h.Seq++ },
			"hash": func(h *ChainHead) { h.Hash = strings.Repeat("e", 64) },
		} {
			hs := slices.Clone(heads)
			change(&hs[i])
			got := LedgerDigest(hs)
			label := fmt.Sprintf("head %d %s", i, name)
			if prior, dup := seen[got]; dup {
				t.Errorf("LedgerDigest after changing %s: got %s, the same as after %s", label, got, prior)
			}
			seen[got] = label
		}
	}
	for name, hs := range map[string][]ChainHead{
		"a head added":   append(slices.Clone(heads), ChainHead{Book: "NEW", Seq: 1, Hash: strings.Repeat("f", 64)}),
		"a head removed": heads[1:],
		"no heads":       nil,
	} {
		if got := LedgerDigest(hs); got == want {
			t.Errorf("LedgerDigest with %s: got the original digest, want a different one", name)
		}
	}
	empty := sha256.Sum256(nil)
	if got := LedgerDigest(nil); got != hex.EncodeToString(empty[:]) {
		t.Errorf("LedgerDigest(nil): got %s, want sha256 of nothing", got)
	}
}

var uuidV7RE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewID(t *testing.T) {
	before := time.Now().UnixMilli()
	seen := map[string]bool{}
	for range 2000 {
		id := NewID()
		if !uuidV7RE.MatchString(id) {
			t.Fatalf("NewID: got %q, want a UUIDv7 (version nibble 7, variant bits 10)", id)
		}
		if seen[id] {
			t.Fatalf("NewID: got %q twice", id)
		}
		seen[id] = true
		b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
		if err != nil || len(b) != 16 {
			t.Fatalf("NewID: got %q, want 16 hex bytes", id)
		}
		if b[6]>>4 != 7 || b[8]>>6 != 0b10 {
			t.Fatalf("NewID %q: got version %d variant %02b, want 7 and 10", id, b[6]>>4, b[8]>>6)
		}
		var ts [8]byte
		copy(ts[2:], b[:6])
		ms := int64(binary.BigEndian.Uint64(ts[:]))
		if after := time.Now().UnixMilli(); ms < before || ms > after {
			t.Fatalf("NewID %q: got timestamp %d, want between %d and %d", id, ms, before, after)
		}
	}
}

func TestParseDate(t *testing.T) {
	got, err := ParseDate("date", "2024-03-21")
	if err != nil || !got.Equal(Date(2024, 3, 21)) || got.Location() != time.UTC {
		t.Errorf("ParseDate(2024-03-21): got %v, %v, want 2024-03-21 UTC", got, err)
	}
	for _, s := range []string{"1990-01-01", "2200-12-31", "2024-02-29"} {
		if _, err := ParseDate("date", s); err != nil {
			t.Errorf("ParseDate(%q): got %v, want nil", s, err)
		}
	}
	tests := []struct{ in, rule string }{
		{"", "is required (YYYY-MM-DD)"},
		{"2024-13-01", "is not a date in the form YYYY-MM-DD"},
		{"2023-02-29", "is not a date"},
		{"2024-04-31", "is not a date"},
		{"21/03/2024", "is not a date"},
		{"03/21/2024", "is not a date"},
		{"2024-3-21", "is not a date"},
		{"2024-03-21T00:00:00Z", "is not a date"},
		{" 2024-03-21", "is not a date"},
		{"1989-12-31", "is outside the years 1990 to 2200"},
		{"2201-01-01", "is outside the years 1990 to 2200"},
	}
	for _, tt := range tests {
		_, err := ParseDate("term_start", tt.in)
		wantFieldError(t, err, "term_start", ErrInvalid, tt.rule)
	}
	if got := FormatDate(time.Time{}); got != "" {
		t.Errorf("FormatDate(zero): got %q, want \"\"", got)
	}
	if got := FormatDate(Date(2024, 9, 11)); got != "2024-09-11" {
		t.Errorf("FormatDate: got %q, want 2024-09-11", got)
	}
}

func TestRequestDigest(t *testing.T) {
	r := DeliverRequest{Contract: "X", Tonnes: tn("10"), Date: Date(2025, 1, 1), Key: "k1"}
	a := RequestDigest("deliver", r)
	if len(a) != sha256.Size {
		t.Fatalf("RequestDigest: got %d bytes, want 32", len(a))
	}
	same := r
	same.Key = "k2" // the key is not part of the request
	same.Tonnes = tn("10.000")
	if b := RequestDigest("deliver", same); !bytes.Equal(a, b) {
		t.Errorf("RequestDigest of the same request: got %x and %x, want equal", a, b)
	}
	other := r
	other.Tonnes = tn("10.001")
	if b := RequestDigest("deliver", other); bytes.Equal(a, b) {
		t.Errorf("RequestDigest of a different request: got equal digests")
	}
	if b := RequestDigest("retire", r); bytes.Equal(a, b) {
		t.Errorf("RequestDigest under another operation: got equal digests")
	}
	md := map[string]string{"b": "1", "a": "2"}
	if x, y := RequestDigest("op", md), RequestDigest("op", maps.Clone(md)); !bytes.Equal(x, y) {
		t.Errorf("RequestDigest of a map: got %x and %x, want equal", x, y)
	}
}
