package ledger

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var isoDateRE = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})$`)

// civilDate is the reference ParseDate is held to, written without the time package's
// parser: four digits, '-', two digits, '-', two digits naming a day of the Gregorian
// calendar in the years 1990 to 2200.
func civilDate(s string) (y, m, d int, ok bool) {
	g := isoDateRE.FindStringSubmatch(s)
	if g == nil {
		return 0, 0, 0, false
	}
	y, _ = strconv.Atoi(g[1])
	m, _ = strconv.Atoi(g[2])
	d, _ = strconv.Atoi(g[3])
	days := []int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days[1] = 29
	}
	if y < 1990 || y > 2200 || m < 1 || m > 12 || d < 1 || d > days[m-1] {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// FuzzParseDate checks that ParseDate accepts exactly the YYYY-MM-DD days of 1990 to 2200,
// that an accepted date is that day at UTC midnight and prints back (FormatDate, and the
// canonical form's hand-written printer) to the very text it was read from, and that a
// refusal is a FieldError naming the field it was asked to read.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{
		"2025-03-01", "2024-02-29", "2000-02-29", "1990-01-01", "2200-12-31", "2025-12-31", "2024-04-01",
		"2030-03-31", "2026-06-15", "2025-02-29", "2100-02-29", "2025-02-30", "2025-04-31", "2025-13-01",
		"2025-00-10", "2025-12-00", "2025-12-32", "1989-12-31", "2201-01-01", "0000-01-01", "9999-12-31",
		"2025-1-01", "2025-01-1", "25-01-01", "20250101", "2025/01/01", "01/02/2025", "10/27/2025",
		" 2025-01-01", "2025-01-01 ", "2025-01-01\n", "2025-01-01T00:00:00Z", "2026-04-13T12:35:58.842275",
		"+2025-01-01", "-2025-01-01", "2025-+1-01", "2025-01-+1", "２０２５-01-01", "2025‐01‐01", "",
		"\x00", "2025-01-01\x00", "2025-W01-1", "2025-001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, field := range []string{"date", "schedule[3].due_on"} {
			got, err := ParseDate(field, s)
			y, m, d, want := civilDate(s)
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != field || fe.Rule == "" || !errors.Is(err, ErrInvalid) ||
					!strings.HasPrefix(err.Error(), field+": ") {
					t.Fatalf("ParseDate(%q, %q): got %v (%T), want an ErrInvalid FieldError naming %s", field, s, err, err, field)
				}
				if !got.IsZero() {
					t.Fatalf("ParseDate(%q, %q) on error: got %v, want the zero time", field, s, got)
				}
				if want {
					t.Fatalf("ParseDate(%q, %q): refused a day of the calendar (%v)", field, s, err)
				}
				continue
			}
			if !want {
				t.Fatalf("ParseDate(%q, %q): accepted %v, want a refusal (not a YYYY-MM-DD day of 1990 to 2200)", field, s, got)
			}
			if !got.Equal(Date(y, time.Month(m), d)) || got.Location() != time.UTC {
				t.Fatalf("ParseDate(%q): got %v, want %04d-%02d-%02d at UTC midnight", s, got, y, m, d)
			}
			if back := FormatDate(got); back != s {
				t.Fatalf("FormatDate(ParseDate(%q)): got %q, want the same text", s, back)
			}
			if back := string(appendDate(nil, got)); back != s {
				t.Fatalf("appendDate(ParseDate(%q)): got %q, want the same text", s, back)
			}
		}
	})
}
