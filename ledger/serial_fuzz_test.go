package ledger

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseSerials checks what every accepted serial range must satisfy, whichever registry's
// form it was written in: a non-empty, ordered range of non-negative serials holding one tonne
// per serial; its label the input less surrounding space, which parses back to the same range;
// its generic form PREFIX:FIRST-LAST parsing back to the same series and ends; and any piece of
// it labelled so that the label parses back to exactly that piece. A refusal is an ErrInvalid
// FieldError on serials, with the zero range.
func FuzzParseSerials(f *testing.F) {
	for _, s := range []string{
		// generic
		"CAR-1-MX-1234-22-101-2024:1-5000", "X:7-7", "puro/BCR.2024_a:0-0", "  X:1-2\n", "X:000010-000019",
		"X:1-999999999999999", "V:1-5", "PURO:11-30", "P:1-1", carRange,
		"X:5-1", "X:1-", "X:-1-2", ":1-2", "X:1", "X:1-2-3", "X:a-b", "X 1-2", "-X:1-2", "X:1 - 2",
		"X:1234567890123456-1234567890123457", "X:" + strings.Repeat("1", 299), strings.Repeat("P", 201) + ":1-2",
		strings.Repeat("P", 200) + ":1-2",
		// Climate Action Reserve
		"CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000", "CAR-1-US-1335-31-983-KS-2025-9659-43177 to 43276",
		"CAR-ROC-US-2056-129-2283-WV-2025-8969-1 to 260294", "CAR-1-US-1335-31-983-KS-2025-9205-5000 to 1",
		"CAR-1-US-1335-31-983-KS-2025-9205-1 - 5000", "CAR-1-US-1335-31-983-KS-2025-9205-1 to",
		// Verra
		"19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
		"19380-941382555-941382741-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0",
		"19385-941467431-941467007-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
		"19385-941467007-941467431-GS-VER-1", "1-11-20-VCS-VCU-1",
		// Gold Standard
		"GS1-1-KE-GS11603-16-2025-30256-110-5463", "GS1-1-UG-GS11236-16-2024-30307-1-19149",
		"GS1-1-CR-GS2913-22-2025-30184-3-3", "GS1-1-KE-GS11603-16-2025-30256-5463-110",
		"GS1-1-KE-GS11603-16-2025-30256-110", "GS1-1-KEN-GS11603-16-2025-30256-110-5463",
		"GS1-1-KE-GS11603-16-2025-30256-110 to 5463", "GS1-1-KE-GS11603-16-2025-30256-1-1234567890123456",
		// Gold Standard's carried-over Kyoto units
		"RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7014", "RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014",
		"RW-5-1467609-2-2-0-7014 - RW-5-1463953-2-2-0-7014", "RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7015",
		"RW-5-1463953-2-2-0-7014 - 1467609", "RW-5-1463953-2-2-0-7014 - RW-5-12345678901234567-2-2-0-7014",
		"RW-5-1463953-2-2-0-7014-RW-5-1467609-2-2-0-7014", "RW-5-1463953-2-2-0-7014",
		// Puro
		puroSeries + "_1-100", puroSeries + "_000010-000019", puroSeries + "_1-999999999999999",
		"PURO_PR_CORC100+_SE_STOCKHOLM-EXERGI_2023_0b7e9d42-51c3-4f8a-a6e2-9d1c7b3e5f60_0-0",
		"PURO_PR_ENHANCED-WEATHERING_GB_UNDO-1_2025_c4e1a7b2-0d3f-4b6a-8e9c-1f2a3b4c5d6e_5001-7500",
		"PURO_1-100", "PURO__X_1-100", "PURO_PR_CORC100+:X_1-100",
		puroSeries + "_" + strings.Repeat("1", 30) + "-" + strings.Repeat("2", 30),
		strings.Repeat("1", 30), strings.Repeat("1", 30) + " - " + strings.Repeat("2", 30),
		// neither
		"", "   ", "hello", "\x00", "X:１-2", "X:1-2\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseSerials(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "serials" || fe.Rule == "" || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseSerials(%q): got %v (%T), want an ErrInvalid FieldError on serials", s, err, err)
			}
			if r != (SerialRange{}) {
				t.Fatalf("ParseSerials(%q) on error: got %+v, want the zero range", s, r)
			}
			return
		}
		if r.Prefix == "" || r.First < 0 || r.Last < r.First {
			t.Fatalf("ParseSerials(%q): got %+v, want a series and 0 <= First <= Last", s, r)
		}
		if r.Label != strings.TrimSpace(s) {
			t.Fatalf("ParseSerials(%q): label %q, want the input less surrounding space", s, r.Label)
		}
		if n := r.Count(); n < 1 || r.Tonnes().Kg() != n*1000 || r.RequireCount(r.Tonnes()) != nil {
			t.Fatalf("ParseSerials(%q): %d serials hold %s t, want one tonne per serial", s, n, r.Tonnes())
		}
		if again, err := ParseSerials(r.Label); err != nil || again != r {
			t.Fatalf("ParseSerials(label %q): got %+v, %v, want %+v", r.Label, again, err, r)
		}
		g, err := ParseSerials(r.String())
		if err != nil || g.Prefix != r.Prefix || g.First != r.First || g.Last != r.Last || g.Label != r.String() {
			t.Fatalf("ParseSerials(%q).String() = %q: got %+v, %v, want the same series and ends", s, r.String(), g, err)
		}
		if p := r.Piece(r.First, r.Last); p != r {
			t.Fatalf("%+v.Piece(First, Last): got %+v, want the range itself", r, p)
		}
		for _, ends := range [][2]int64{{r.First, r.First}, {r.Last, r.Last}, {r.First + r.Count()/3, r.Last - r.Count()/3}} {
			p := r.Piece(ends[0], ends[1])
			back, err := ParseSerials(p.Label)
			if p.Prefix != r.Prefix || p.First != ends[0] || p.Last != ends[1] || err != nil ||
				back.Prefix != r.Prefix || back.First != ends[0] || back.Last != ends[1] || !r.Contains(p) {
				t.Fatalf("%+v.Piece(%d, %d): got %+v, whose label reads back as %+v, %v; want that piece of the series", r, ends[0], ends[1], p, back, err)
			}
		}
	})
}
