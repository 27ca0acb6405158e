package reports

import (
	"encoding/json"
	"io"
)

// writeJSON writes v as JSON indented by two spaces, with a final newline: byte for byte what
// json.Encoder with SetIndent("", "  ") writes, at a fraction of the cost. The encoder
// re-scans its whole output through encoding/json's validating state machine to indent it,
// which took a third of a 1,000-contract term report; the output of json.Marshal is known to
// be valid and compact, so indenting it needs only to track strings and nesting.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out := indentCompact(make([]byte, 0, len(b)+len(b)/2), b)
	_, err = w.Write(append(out, '\n'))
	return err
}

// indentCompact appends src, compact JSON as json.Marshal writes it (no whitespace outside
// strings), to dst indented as json.Indent(dst, src, "", "  ") would: "{}" and "[]" stay
// closed, ":" is followed by a space, every value of an object or array on its own line.
func indentCompact(dst, src []byte) []byte {
	depth := 0
	open := false // a '{' or '[' was just written; its first value opens a new line
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, ' ', ' ')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if open && c != '}' && c != ']' {
			open = false
			depth++
			newline()
		}
		switch c {
		case '"':
			// copy the string through its closing quote, skipping escaped characters
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			dst = append(dst, src[i:min(j+1, len(src))]...)
			i = j
		case '{', '[':
			dst = append(dst, c)
			open = true
		case '}', ']':
			if open {
				open = false
			} else {
				depth--
				newline()
			}
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
