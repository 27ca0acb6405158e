package reports

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Inert returns s as a terminal may show it: every control character (C0, line breaks and
// tabs included, DEL and C1), the Unicode line and paragraph separators, and the
// bidirectional embeddings, overrides and isolates that reorder what follows them are
// written as Go escapes (\x1b, \n, \t, \u202e), and so are bytes that are not UTF-8. Stored
// text then cannot move the cursor, recolour the screen, set a window title or a hyperlink,
// start a line that looks like another row, shift a table's columns or read backwards.
// Everything else, backslashes included, is left as it is: the JSON formats carry the exact
// value. Every table and text writer runs stored text through it.
func Inert(s string) string { return inert(s, false) }

// InertLines is Inert for a message of several lines (a diagnostic on stderr): line feeds
// stay, every other control character is escaped.
func InertLines(s string) string { return inert(s, true) }

func inert(s string, keepLF bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepLF:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports the non-ASCII runes a terminal acts on or that reorder the text around
// them: C1 controls, the line and paragraph separators, and the bidirectional formatting
// characters (embeddings, overrides, isolates and their terminators).
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
