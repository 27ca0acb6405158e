package ledger

import "unicode/utf8"

// jsonTextError says why a JSON text would not decode to exactly what it holds, or "" when
// it would: bytes that are not UTF-8, or a \u escape of half a surrogate pair. encoding/json
// replaces either with U+FFFD without a word, so a text field would be stored as something
// its sender never wrote; the CLI and CSV import refuse such text (checkText), and so must
// the JSON readers.
func jsonTextError(b []byte) string {
	if !utf8.Valid(b) {
		return "is not valid UTF-8"
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // an escaped character, a backslash included
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			continue // not an escape encoding/json accepts: a syntax error it reports itself
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if lo, ok := hex4(b, i+8); ok && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' && lo >= 0xdc00 && lo < 0xe000 {
				i += 11
				continue
			}
			return "holds half a surrogate pair (a \\u escape of U+D800 to U+DFFF with no partner), which is no character"
		case r >= 0xdc00 && r < 0xe000:
			return "holds half a surrogate pair (a \\u escape of U+D800 to U+DFFF with no partner), which is no character"
		}
		i += 5
	}
	return ""
}

// hex4 reads four hexadecimal digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
