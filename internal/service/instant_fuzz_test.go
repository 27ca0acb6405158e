package service

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carbonledger/carbonledger/ledger"
)

// apiInstant is how the API and the reports write an instant (RFC 3339, UTC, microseconds).
const apiInstant = "2006-01-02T15:04:05.000000Z"

// FuzzParseInstant checks the known_at parameter of the reports: an RFC 3339 instant, or a
// YYYY-MM-DD date meaning the end of that day in UTC. An accepted value is that instant in
// UTC, and prints in the API's own instant form as text that reads back as the same instant
// (to the microsecond, the form's precision), as a report's known_at and an audit
// statement's must; a refused one is an ErrInvalid FieldError naming the parameter.
func FuzzParseInstant(f *testing.F) {
	for _, s := range []string{
		"2025-07-01T00:00:00Z", "2025-07-01T09:30:00.000000Z", "2026-04-09T18:21:22.047712Z", "2025-07-01T02:00:00+02:00",
		"2025-07-01T00:00:00.123456789Z", "2025-07-01", "2024-02-29", "2025-02-29", "1970-01-01T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
		"0000-01-01", "9999-12-31", "2025-07-01T00:00:00", "2025-07-01 00:00:00Z", "2025-07-01t00:00:00z",
		"2025-07-01T24:00:00Z", "2025-07-01T00:00:60Z", "2025-07-01T00:00:00+24:00", "yesterday", "", " 2025-07-01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInstant("known_at", s)
		if err != nil {
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != "known_at" || fe.Rule == "" || !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("ParseInstant(%q): got %v (%T), want an ErrInvalid FieldError on known_at", s, err, err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseInstant(%q): got %v, want an instant in UTC", s, got)
		}
		if d, derr := time.Parse(time.DateOnly, s); derr == nil {
			if want := d.Add(24*time.Hour - time.Microsecond); !got.Equal(want) {
				t.Fatalf("ParseInstant(%q): got %v, want the end of that day, %v", s, got, want)
			}
		} else if want, ierr := time.Parse(time.RFC3339Nano, s); ierr != nil || !got.Equal(want) {
			t.Fatalf("ParseInstant(%q): got %v, want the instant %v (%v)", s, got, want, ierr)
		}
		text := got.Format(apiInstant)
		back, err := time.Parse(time.RFC3339Nano, text)
		if err != nil || !back.Equal(got.Truncate(time.Microsecond)) || strings.Count(text, "-") != 2 {
			t.Fatalf("ParseInstant(%q) = %v prints as %q, which reads back as %v, %v", s, got, text, back, err)
		}
	})
}
