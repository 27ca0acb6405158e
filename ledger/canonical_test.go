package ledger

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The hand-written canonical form must equal encoding/json's byte for byte, for any text
// (control characters, quotes, HTML characters, U+2028, invalid UTF-8, every plane).
func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"", "a", "\"", "\\", "\n", "\r\t", "\b\f", "\x00", "\x1f", "\x7f", "<>&", "\u2028", "\u2029",
		"é", "漢字", "😀", "\xff", "\xc3", "\xed\xa0\x80", "=SUM(A1)", "{\"x\":1}", "'", "\u00a0", "\ufeff"}
	text := func() string {
		var sb strings.Builder
		for range r.IntN(6) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		return sb.String()
	}
	for i := 0; i < 5000; i++ {
		e := Entry{ID: NewID(), Book: "B" + text(), Seq: r.Int64N(1 << 40), Kind: Kinds[r.IntN(len(Kinds))],
			EffectiveOn: Date(2020+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28)),
			RecordedAt:  time.Unix(r.Int64N(2e9), r.Int64N(1e9)).Truncate(time.Microsecond),
			Key:         text(), Request: []byte(text()), Description: text(), Reverts: text(), Vintage: r.IntN(3000),
			HashVersion: 1, PrevHash: []byte(text())}
		if r.IntN(2) == 0 {
			e.Metadata = map[string]string{}
			for range r.IntN(5) {
				e.Metadata[text()] = text()
			}
		}
		for range r.IntN(5) {
			e.Postings = append(e.Postings, Posting{Account: text(), Amount: TonnesFromKg(r.Int64N(1e12) - 5e11)})
		}
		fast, err := e.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		slow, err := e.canonicalReflect()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("entry %d: canonical forms differ\n fast %q\n json %q", i, fast, slow)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	e := Entry{ID: NewID(), Book: "MSFT-TN150", Seq: 42, Kind: KindDeliver, EffectiveOn: Date(2025, 1, 2), RecordedAt: time.Now(),
		Key: "k-1", Request: make([]byte, 32), Description: "Delivery of 1000.000 t under MSFT-TN150 (contract year 1)",
		Metadata: map[string]string{"contract_year": "1", "note": "illustrative"}, HashVersion: 1, PrevHash: make([]byte, 32),
		Postings: []Posting{{"contract:MSFT-TN150:open", MustTonnes("-1000")}, {"buyer:microsoft:holding:MSFT-TN150", MustTonnes("1000")}}}
	for b.Loop() {
		e.Canonical()
	}
}

// The fast path of Tonnes.String agrees with decimal's StringFixed over the whole range.
func TestTonnesStringFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 200000; i++ {
		var v Tonnes
		switch i % 4 {
		case 0:
			v = TonnesFromKg(r.Int64N(2e18) - 1e18)
		case 1:
			v = TonnesFromKg(r.Int64N(2000) - 1000)
		case 2:
			v = MustTonnes(fmtInt(r.Int64N(1e15)))
		default:
			v = MustTonnes("-" + fmtInt(r.Int64N(1e12)) + ".5")
		}
		if got, want := v.String(), v.Decimal().StringFixed(Scale); got != want {
			t.Fatalf("String() = %q, want %q", got, want)
		}
	}
}

func fmtInt(n int64) string { return strings.TrimSpace(strings.Repeat(" ", 0) + itoa(n)) }

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// The hand-written dates and instants of the canonical form equal time's formatter for any
// year, including those before 1000 and the ones the fast path hands back to the formatter.
func TestCanonicalTimesMatchFormatter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	edges := []time.Time{time.Time{}, Date(1, 1, 1), Date(999, 12, 31), Date(1000, 1, 1), Date(9999, 12, 31).Add(24*time.Hour - time.Microsecond),
		Date(10000, 1, 1), Date(-1, 6, 15), time.Unix(0, 0), time.Unix(0, 999_999_000), Date(2026, 6, 1).Add(23*time.Hour + 59*time.Minute + 59*time.Second)}
	for i := 0; i < 20000; i++ {
		edges = append(edges, time.Date(r.IntN(10100)-50, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60),
			r.IntN(1e9), time.UTC).Truncate(time.Microsecond))
	}
	for _, tm := range edges {
		tm = tm.UTC()
		if got, want := string(appendDate(nil, tm)), tm.Format(time.DateOnly); got != want {
			t.Fatalf("appendDate(%v) = %q, want %q", tm, got, want)
		}
		if got, want := string(appendInstant(nil, tm)), tm.Format("2006-01-02T15:04:05.000000Z"); got != want {
			t.Fatalf("appendInstant(%v) = %q, want %q", tm, got, want)
		}
	}
}

// dayNum, which the audit computes for every entry, must be the UTC civil date of any
// instant, before 1970 too, as the calendar counts it.
func TestDayNumIsTheUTCDate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Unix(86399, 999999999), time.Unix(-86400, 0), time.Unix(-86401, 0),
		Date(1, 1, 1), Date(9999, 12, 31), time.Date(2026, 11, 29, 23, 59, 59, 0, time.FixedZone("+14", 14*3600))}
	for range 20000 {
		times = append(times, time.Unix(r.Int64N(1<<38)-1<<37, r.Int64N(1e9)))
	}
	for _, tm := range times {
		y, m, d := tm.UTC().Date()
		want := int32(Date(y, m, d).Unix() / 86400) // (a midnight: an exact division)
		if got := dayNum(tm); got != want || !dayTime(got).Equal(Date(y, m, d)) {
			t.Fatalf("dayNum(%v) = %d, want %d", tm, got, want)
		}
	}
}
