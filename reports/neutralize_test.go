package reports

import "testing"

func TestNeutralizeRoundTrip(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(1)", "'@SUM(1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'tis", "'tis"},      // an apostrophe before a letter is text, kept as it is
		{"'=1", "''=1"},       // an apostrophe the import would take for the prefix gets one too
		{"''", "'''"},         // likewise two
		{"'", "'"},            // a lone apostrophe
		{"a=b", "a=b"},        // only the first character counts
		{" =1", " =1"},        // a space before is text to a spreadsheet
		{"\n=1", "\n=1"},      // a line feed is not among OWASP's characters
		{"-2.000", "'-2.000"}, // as text; figures are Num cells and never pass through Neutralize
	}
	for _, c := range cases {
		if got := Neutralize(c.in); got != c.want {
			t.Errorf("Neutralize(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := Unneutralize(Neutralize(c.in)); got != c.in {
			t.Errorf("Unneutralize(Neutralize(%q)) = %q, want it back", c.in, got)
		}
	}
	for _, s := range hostileTexts {
		n := Neutralize(s)
		if formulaLead(n[0]) {
			t.Errorf("Neutralize(%q) = %q still starts a formula", s, n)
		}
		if Unneutralize(n) != s {
			t.Errorf("%q does not come back from %q", s, n)
		}
	}
	// A cell a person wrote with an apostrophe before a formula character reads as the text
	// after it, as a spreadsheet reads it.
	if got := Unneutralize("'=x"); got != "=x" {
		t.Errorf("Unneutralize('=x) = %q", got)
	}
}

// FuzzNeutralize: whatever the text, Unneutralize gives it back and the cell never starts a
// formula.
func FuzzNeutralize(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Add("''=")
	f.Fuzz(func(t *testing.T, s string) {
		n := Neutralize(s)
		if Unneutralize(n) != s {
			t.Fatalf("%q -> %q -> %q", s, n, Unneutralize(n))
		}
		if n != "" && formulaLead(n[0]) {
			t.Fatalf("%q starts a formula", n)
		}
	})
}
