package store

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUUIDKey(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2b", true},
		{"0B4E5F0A-8C1D-4F2E-9A3B-7C6D5E4F3A2B", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"0b4e5f0a8c1d4f2e9a3b7c6d5e4f3a2b", false},
		{"0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2", false},
		{"0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2bc", false},
		{"0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e4f3a2g", false},
		{"0b4e5f0a-8c1d-4f2e-9a3b--c6d5e4f3a2b", false},
		{"0b4e5f0a-8c1d-4f2e-9a3b-7c6d5e-f3a2b", false},
		{"", false},
	} {
		k, ok := uuidKey([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("uuidKey(%q): ok %t, want %t", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			want, _ := hex.DecodeString(strings.ReplaceAll(tc.in, "-", ""))
			if string(k[:]) != string(want) {
				t.Errorf("uuidKey(%q) = %x, want %x", tc.in, k, want)
			}
		}
	}
}

func TestParseDateTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-06-01", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-06-01 23:59:55", time.Date(2026, 6, 1, 23, 59, 55, 0, time.UTC)},
		{"2026-06-01 23:59:55.1", time.Date(2026, 6, 1, 23, 59, 55, 100_000_000, time.UTC)},
		{"2026-06-01 23:59:55.123456", time.Date(2026, 6, 1, 23, 59, 55, 123_456_000, time.UTC)},
		{"1999-12-31 00:00:00.000001", time.Date(1999, 12, 31, 0, 0, 0, 1000, time.UTC)},
	} {
		got, err := parseDateTime([]byte(tc.in))
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "2026-6-01", "2026-06-01T23:59:55", "2026-06-01 24:00:00", "2026-13-01", "2026-06-01 23:59:55.", "20x6-06-01"} {
		if got, err := parseDateTime([]byte(bad)); err == nil {
			t.Errorf("parseDateTime(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseInt64Array(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int64
		ok   bool
	}{
		{"{}", nil, true},
		{"{7}", []int64{7}, true},
		{"{1,-2,30000000000}", []int64{1, -2, 30000000000}, true},
		{"", nil, false}, {"{", nil, false}, {"1,2", nil, false}, {"{1,,2}", nil, false}, {"{1,x}", nil, false}, {"{NULL}", nil, false},
	} {
		got, err := parseInt64Array(nil, []byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("parseInt64Array(%q) = %v, %v; want %v (ok %t)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
