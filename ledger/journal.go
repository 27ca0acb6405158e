package ledger

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is the kind of a journal entry. The set is closed: reports and the audit key on the
// kind, never on a description.
type Kind string

const (
	KindOpen     Kind = "open"     // opening movement of a plain journal book (no contract)
	KindSign     Kind = "sign"     // supplier supply -> contract open: the contracted tonnes
	KindAmend    Kind = "amend"    // contracted tonnes or the schedule changed
	KindDeliver  Kind = "deliver"  // contract open -> buyer holding (or buyer retired)
	KindRetire   Kind = "retire"   // buyer holding -> buyer retired; final
	KindCancel   Kind = "cancel"   // contract open -> contract cancelled
	KindReverse  Kind = "reverse"  // a carbon reversal: holding -> reversed (+ replacement) or buffer -> buffer cancelled
	KindRevert   Kind = "revert"   // the accounting correction of a mistaken entry
	KindTransfer Kind = "transfer" // a plain movement between two accounts of a journal book
)

// Kinds lists every entry kind, in the order reports print them.
var Kinds = []Kind{KindOpen, KindTransfer, KindSign, KindAmend, KindDeliver, KindRetire, KindCancel, KindReverse, KindRevert}

// Valid reports whether k is one of the closed set.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// AccountKind says what state the tonnes in an account are in, and with it whether the
// account may go negative.
type AccountKind string

const (
	AccSupply          AccountKind = "supply"           // a supplier's source of tonnes; may go negative
	AccOpen            AccountKind = "open"             // contracted, not yet delivered
	AccHolding         AccountKind = "holding"          // delivered to the buyer, not yet retired
	AccRetired         AccountKind = "retired"          // retired; nothing ever leaves it
	AccCancelled       AccountKind = "cancelled"        // contracted tonnes that will not be delivered
	AccReversed        AccountKind = "reversed"         // delivered tonnes re-emitted (fire, leakage)
	AccBuffer          AccountKind = "buffer"           // a registry's buffer pool; may go negative
	AccBufferCancelled AccountKind = "buffer_cancelled" // buffer credits the registry cancelled for a reversal
	AccAsset           AccountKind = "asset"            // a plain journal account that may not go negative
	AccEquity          AccountKind = "equity"           // a plain journal account that may go negative
)

// AccountKinds lists every account kind.
var AccountKinds = []AccountKind{AccSupply, AccOpen, AccHolding, AccRetired, AccCancelled, AccReversed,
	AccBuffer, AccBufferCancelled, AccAsset, AccEquity}

// Valid reports whether k is one of the known kinds.
func (k AccountKind) Valid() bool { return slices.Contains(AccountKinds, k) }

// MayGoNegative reports whether an account of this kind is a source that can be overdrawn.
// Every other account has a floor of zero (the open account of a contract with an
// over-delivery tolerance: minus the tolerance).
func (k AccountKind) MayGoNegative() bool {
	return k == AccSupply || k == AccBuffer || k == AccEquity
}

// Account is one state tonnes can be in, within one book.
type Account struct {
	Code  string      // stable, readable, never renamed: "contract:TN150-2024:open"
	Book  string      // the book (contract) it belongs to; entries never cross books
	Kind  AccountKind //
	Floor *Tonnes     // lowest balance allowed; nil means unbounded
}

var (
	accountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*(:[A-Za-z0-9][A-Za-z0-9_-]*)+$`)
	codeRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,47}$`)
)

// ValidateAccountCode checks an account code: colon-separated components of letters, digits,
// '-' and '_', the first lower-case. The rule keeps codes valid hledger and (after a
// mechanical mapping) beancount account names.
func ValidateAccountCode(code string) error {
	if !accountRE.MatchString(code) || len(code) > 200 {
		return Invalid("account", code, "is not an account code (two or more ':'-separated parts of letters, digits, '-' or '_', at most 200 characters)")
	}
	return nil
}

// ValidateCode checks a user-chosen code (a contract or book code): 1 to 48 letters, digits
// and '-', starting with a letter or digit.
func ValidateCode(field, code string) error {
	if !codeRE.MatchString(code) {
		return Invalid(field, code, "must be 1 to 48 letters, digits or '-', starting with a letter or digit")
	}
	return nil
}

// Posting is one signed movement on one account. Positive amounts flow into the account.
type Posting struct {
	Account string `json:"account"`
	Amount  Tonnes `json:"amount"`
}

// Entry is one balanced journal entry. It is immutable once written; corrections are new
// entries (KindRevert) that reference the original.
type Entry struct {
	ID          string            `json:"id"`
	Book        string            `json:"book"`
	Seq         int64             `json:"seq"`
	Kind        Kind              `json:"kind"`
	EffectiveOn time.Time         `json:"effective_on"` // a civil date at UTC midnight
	RecordedAt  time.Time         `json:"recorded_at"`  // the database clock at write time
	Key         string            `json:"idempotency_key"`
	Request     []byte            `json:"-"` // sha256 of the request; a replay must match it
	Description string            `json:"description"`
	Reverts     string            `json:"reverts,omitempty"` // id of the entry this one corrects
	RevertsKind Kind              `json:"-"`                 // the kind of that entry (as stored)
	Vintage     int               `json:"vintage,omitempty"` // the credits' vintage year, 0 when unknown
	Metadata    map[string]string `json:"metadata,omitempty"`
	Postings    []Posting         `json:"postings"`
	HashVersion int               `json:"hash_version"`
	PrevHash    []byte            `json:"-"`
	Hash        []byte            `json:"-"`
}

// MetaRecordedBy is the metadata key of who wrote an entry: "token:NAME" for the API's
// tokens, "user:NAME" for the CLI's OS user. Entries written before it was recorded lack it.
const MetaRecordedBy = "recorded_by"

// Maximum sizes of an entry's free text, so one request cannot bloat the journal.
const (
	maxDescription = 1000
	maxKey         = 200
	maxMetaKeys    = 32
	maxMetaValue   = 4000 // a 50-year schedule with vintages, prices and due dates fits
	maxPostings    = 64
)

var metaKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Validate checks everything about an entry that needs no database: a known kind, a valid
// date, at least two non-zero postings on distinct, well-formed accounts that sum to zero,
// text that is valid UTF-8 within its size limits. An amend that changes only the schedule is
// the one entry allowed no postings.
func (e *Entry) Validate() error {
	if !e.Kind.Valid() {
		return Invalid("kind", string(e.Kind), "is not an entry kind ("+joinKinds()+")")
	}
	if e.EffectiveOn.IsZero() {
		return Invalid("date", "", "is required")
	}
	if err := ValidateCode("book", e.Book); err != nil {
		return err
	}
	if e.Key == "" {
		return Invalid("key", "", "is required: every write carries an idempotency key")
	}
	if err := checkText("key", e.Key, maxKey); err != nil {
		return err
	}
	if err := checkText("description", e.Description, maxDescription); err != nil {
		return err
	}
	if len(e.Metadata) > maxMetaKeys {
		return Invalid("metadata", "", fmt.Sprintf("has %d keys, at most %d", len(e.Metadata), maxMetaKeys))
	}
	for k, v := range e.Metadata {
		if !metaKeyRE.MatchString(k) {
			return Invalid("metadata", k, "is not a metadata key (lower-case letters, digits and '_', starting with a letter)")
		}
		if err := checkText("metadata."+k, v, maxMetaValue); err != nil {
			return err
		}
	}
	if len(e.Postings) == 0 && e.Kind == KindAmend {
		return nil
	}
	if len(e.Postings) < 2 {
		return Invalid("postings", fmt.Sprint(len(e.Postings)), "posting(s): an entry needs at least two")
	}
	if len(e.Postings) > maxPostings {
		return Invalid("postings", fmt.Sprint(len(e.Postings)), fmt.Sprintf("postings: at most %d", maxPostings))
	}
	seen := map[string]bool{}
	var sum Tonnes
	for i, p := range e.Postings {
		field := fmt.Sprintf("postings[%d]", i)
		if err := ValidateAccountCode(p.Account); err != nil {
			return Relabel(err, field+".account")
		}
		if seen[p.Account] {
			return Invalid(field+".account", p.Account, "appears twice in one entry; merge the postings")
		}
		seen[p.Account] = true
		if p.Amount.IsZero() {
			return Invalid(field+".amount", p.Amount.String(), "is zero; a posting must move something")
		}
		sum = sum.Add(p.Amount)
	}
	if !sum.IsZero() {
		return Invalid("postings", sum.String(), "is the sum of the postings; an entry must balance to exactly 0.000")
	}
	return nil
}

func checkText(field, s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return Invalid(field, "", "is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return Invalid(field, "", "contains a NUL character")
	case len(s) > max:
		return Invalid(field, "", fmt.Sprintf("is too long (%d bytes, at most %d)", len(s), max))
	}
	return nil
}

func joinKinds() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// HashVersion is the version of the canonical form Seal writes. A new version may add
// fields; the audit keeps verifying every version it ever wrote.
const HashVersion = 1

// canonicalV1 is the canonical form of hash version 1. Field order is fixed by the struct;
// metadata is a map, which encoding/json writes with sorted keys; postings are sorted by
// account code. Every field an audit relies on is here, and the previous hash chains it.
type canonicalV1 struct {
	V           int               `json:"v"`
	ID          string            `json:"id"`
	Book        string            `json:"book"`
	Seq         int64             `json:"seq"`
	Kind        Kind              `json:"kind"`
	EffectiveOn string            `json:"effective_on"`
	RecordedAt  string            `json:"recorded_at"`
	Key         string            `json:"key"`
	Request     string            `json:"request"`
	Description string            `json:"description"`
	Reverts     string            `json:"reverts"`
	Vintage     int               `json:"vintage"`
	Metadata    map[string]string `json:"metadata"`
	Postings    [][2]string       `json:"postings"`
	Prev        string            `json:"prev"`
}

// Canonical returns the bytes the entry's hash is computed over: the JSON of canonicalV1,
// exactly as encoding/json writes it without HTML escaping, appended by hand because the audit
// computes it millions of times (canonicalReflect, kept for the tests, is the reference).
func (e *Entry) Canonical() ([]byte, error) {
	return e.AppendCanonical(make([]byte, 0, 512+64*len(e.Postings)+len(e.Description)))
}

// appendDate appends t's date as time.DateOnly formats it; appendInstant appends t as
// "2006-01-02T15:04:05.000000Z" formats it. Written out by hand for the years 0 to 9999
// (time's formatter was a sixth of the canonical form's cost, which the audit pays for every
// entry); other years go through the formatter.
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, time.DateOnly)
	}
	return appendYMD(b, y, int(m), d)
}

func appendYMD(b []byte, y, m, d int) []byte {
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

func appendInstant(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	}
	hh, mm, ss := t.Clock()
	us := t.Nanosecond() / 1000
	b = appendYMD(b, y, int(m), d)
	b = append(b, 'T', byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':', byte('0'+ss/10), byte('0'+ss%10), '.')
	for div := 100000; div > 0; div /= 10 {
		b = append(b, byte('0'+us/div%10))
	}
	return append(b, 'Z')
}

// AppendCanonical appends the canonical form to b (a caller hashing many entries reuses b).
func (e *Entry) AppendCanonical(b []byte) ([]byte, error) {
	if e.HashVersion != 1 {
		return nil, fmt.Errorf("entry %s: unknown hash version %d", e.ID, e.HashVersion)
	}
	b = append(b, `{"v":1,"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"book":`...)
	b = appendJSONString(b, e.Book)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(e.Kind))
	b = append(b, `,"effective_on":"`...)
	if !e.EffectiveOn.IsZero() {
		b = appendDate(b, e.EffectiveOn)
	}
	b = append(b, '"')
	b = append(b, `,"recorded_at":"`...)
	b = appendInstant(b, e.RecordedAt.UTC())
	b = append(b, `","key":`...)
	b = appendJSONString(b, e.Key)
	b = append(b, `,"request":"`...)
	b = hex.AppendEncode(b, e.Request)
	b = append(b, `","description":`...)
	b = appendJSONString(b, e.Description)
	b = append(b, `,"reverts":`...)
	b = appendJSONString(b, e.Reverts)
	b = append(b, `,"vintage":`...)
	b = strconv.AppendInt(b, int64(e.Vintage), 10)
	b = append(b, `,"metadata":{`...)
	var kbuf [16]string // (on the stack: a few keys are the rule)
	keys := kbuf[:0]
	for k := range e.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, e.Metadata[k])
	}
	b = append(b, `},"postings":[`...)
	byAccount := func(x, y Posting) int { return strings.Compare(x.Account, y.Account) }
	ps := e.Postings
	if !slices.IsSortedFunc(ps, byAccount) {
		ps = slices.Clone(ps)
		slices.SortStableFunc(ps, byAccount)
	}
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendJSONString(b, p.Account)
		b = append(b, ',', '"')
		b = p.Amount.Append(b)
		b = append(b, '"', ']')
	}
	b = append(b, `],"prev":"`...)
	b = hex.AppendEncode(b, e.PrevHash)
	b = append(b, `"}`...)
	return b, nil
}

// canonicalReflect is the canonical form built with encoding/json: the definition the fast
// Canonical must match byte for byte.
func (e *Entry) canonicalReflect() ([]byte, error) {
	ps := make([][2]string, len(e.Postings))
	for i, p := range e.Postings {
		ps[i] = [2]string{p.Account, p.Amount.String()}
	}
	slices.SortStableFunc(ps, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	md := e.Metadata
	if md == nil {
		md = map[string]string{}
	}
	c := canonicalV1{
		V: 1, ID: e.ID, Book: e.Book, Seq: e.Seq, Kind: e.Kind,
		EffectiveOn: FormatDate(e.EffectiveOn),
		RecordedAt:  e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		Key:         e.Key, Request: hex.EncodeToString(e.Request), Description: e.Description,
		Reverts: e.Reverts, Vintage: e.Vintage, Metadata: md, Postings: ps,
		Prev: hex.EncodeToString(e.PrevHash),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendJSONString appends s as encoding/json writes a string with HTML escaping off, as
// the canonical form has it.
func appendJSONString(b []byte, s string) []byte { return AppendJSONString(b, s, false) }

// jsonSafe tells the ASCII bytes a JSON string holds as they are (jsonSafeHTML: also when
// < > & are escaped); a table, because the audit runs every byte of every entry through it.
var jsonSafe, jsonSafeHTML = func() (plain, html [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
		html[c] = plain[c] && c != '<' && c != '>' && c != '&'
	}
	return
}()

// plainWord reports whether the eight bytes of s at i are all printable ASCII other than
// '"' and '\\', read as one word: a byte below 0x20 or a quote or a backslash leaves a high
// bit in these sums, and so does a byte of 0x80 and above.
func plainWord(s string, i int) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	return (w-ones*0x20)&^w&highs|zero(w^(ones*'"'))|zero(w^(ones*'\\'))|w&highs == 0
}

// AppendJSONString appends s as encoding/json writes a string: quotes, backslashes and
// control characters escaped (\b \f \n \r \t, else \u00xx), invalid UTF-8 as \ufffd, U+2028
// and U+2029 escaped, and with html (json.Marshal's default) < > & as \u003c \u003e \u0026.
func AppendJSONString(b []byte, s string, html bool) []byte {
	const hexDigits = "0123456789abcdef"
	safe := &jsonSafe
	if html {
		safe = &jsonSafeHTML
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if !html && i+8 <= len(s) && plainWord(s, i) { // eight bytes that need no escaping
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ComputeHash returns sha256 over the canonical form (which includes the previous hash).
func (e *Entry) ComputeHash() ([]byte, error) {
	b, err := e.Canonical()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// Seal sets the entry's chain position and hash: it follows prev (the book's head hash, or
// GenesisHash for a new book) at position seq, recorded at the given database time.
func (e *Entry) Seal(seq int64, prev []byte, recordedAt time.Time) error {
	e.Seq = seq
	e.PrevHash = slices.Clone(prev)
	e.RecordedAt = recordedAt.UTC().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	e.HashVersion = HashVersion
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// GenesisHash is the previous hash of a book's first entry.
var GenesisHash = make([]byte, sha256.Size)

// RequestDigest returns the sha256 of a request's canonical JSON, prefixed by its operation
// name. Two requests under one idempotency key are the same request when their digests match.
// An operation's Request is hashed in its fixed digest form (request.go), which leaves out the
// key and is the same for every spelling that parses to the same request ("1.5" and "1.500").
func RequestDigest(op string, req any) []byte {
	if r, ok := req.(Request); ok {
		req = r.digestForm()
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(fmt.Sprintf("request digest of %s: %v", op, err)) // requests are plain structs
	}
	h := sha256.New()
	h.Write([]byte(op))
	h.Write([]byte{0})
	h.Write(b)
	return h.Sum(nil)
}

// ChainHead is the position and hash of the last entry of one book.
type ChainHead struct {
	Book string `json:"book"`
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"` // hex
}

// LedgerDigest is the hash over all chain heads, sorted by book: one value that changes
// whenever any entry anywhere is added or altered.
func LedgerDigest(heads []ChainHead) string {
	hs := slices.Clone(heads)
	slices.SortFunc(hs, func(a, b ChainHead) int { return strings.Compare(a.Book, b.Book) })
	h := sha256.New()
	for _, c := range hs {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", c.Book, c.Seq, c.Hash)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NewID returns a new entry identifier: a UUIDv7 (time-ordered, so ids of recent entries sit
// together in an index), opaque to users.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	ms := uint64(time.Now().UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(b[0:6], ts[2:8])
	b[6] = 0x70 | (b[6] & 0x0f)
	b[8] = 0x80 | (b[8] & 0x3f)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ParseDate parses a YYYY-MM-DD date for the named field.
func ParseDate(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, Invalid(field, "", "is required (YYYY-MM-DD)")
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, Invalid(field, s, "is not a date in the form YYYY-MM-DD")
	}
	if t.Year() < 1990 || t.Year() > 2200 {
		return time.Time{}, Invalid(field, s, "is outside the years 1990 to 2200")
	}
	return t, nil
}

// FormatDate prints a civil date as YYYY-MM-DD ("" for the zero time).
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

// Date returns the civil date y-m-d at UTC midnight.
func Date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// CheckLink verifies one entry of a chain walk: it sits at position wantSeq, names prev as its
// predecessor's hash, and its stored hash is the hash of its content. It returns "" when all
// hold, else what is wrong.
func CheckLink(e Entry, wantSeq int64, prev []byte) string {
	return checkLink(&e, wantSeq, prev, nil)
}

// checkLink is CheckLink with a scratch buffer for the canonical form.
func checkLink(e *Entry, wantSeq int64, prev []byte, scratch *[]byte) string {
	if e.Seq != wantSeq {
		return fmt.Sprintf("sequence %d where %d was expected (an entry is missing or moved)", e.Seq, wantSeq)
	}
	if !bytes.Equal(e.PrevHash, prev) {
		return "its previous hash does not match the entry before it (an entry was removed, inserted or reordered)"
	}
	var buf []byte
	if scratch != nil {
		buf = (*scratch)[:0]
	}
	b, err := e.AppendCanonical(buf)
	if err != nil {
		return err.Error()
	}
	if scratch != nil {
		*scratch = b
	}
	if h := sha256.Sum256(b); !bytes.Equal(h[:], e.Hash) {
		return "its content no longer matches its hash (a field or posting was altered)"
	}
	return ""
}
