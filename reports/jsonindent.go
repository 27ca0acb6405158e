package reports

import (
	"bytes"
	"encoding/json"
	"io"
)

// writeJSON writes v as JSON indented by two spaces, with a final newline: byte for byte what
// json.Encoder with SetIndent("", "  ") writes, at a fraction of the cost. That encoder
// re-scans its whole output through encoding/json's validating state machine to indent it;
// here the encoder writes compact JSON (known to be valid) from its pooled buffer, and an
// indenter that tracks only strings and nesting streams it to w through a small buffer, so
// that a large report is never held twice, nor grown and copied, in memory.
func writeJSON(w io.Writer, v any) error {
	in := &indenter{w: w, buf: make([]byte, 0, 32<<10)}
	if t, ok := v.(Term); ok { // the largest report writes itself (termjson.go)
		t.writeJSONTo(in)
		return in.flush()
	}
	if err := json.NewEncoder(in).Encode(v); err != nil {
		return err
	}
	return in.flush()
}

// indentCompact appends src, compact JSON as json.Marshal writes it (no whitespace outside
// strings), to dst indented as json.Indent(dst, src, "", "  ") would: "{}" and "[]" stay
// closed, ":" is followed by a space, every value of an object or array on its own line.
func indentCompact(dst, src []byte) []byte {
	in := indenter{buf: dst}
	in.indent(src)
	return in.buf
}

// indenter indents compact JSON written to it in any number of pieces. It appends to buf
// and, when w is set, passes buf on to w whenever it fills.
type indenter struct {
	w        io.Writer
	buf      []byte
	err      error
	depth    int
	open     bool // a '{' or '[' was just written; its first value opens a new line
	inString bool
	escaped  bool // inside a string, after a backslash
}

func (in *indenter) Write(p []byte) (int, error) {
	in.indent(p)
	return len(p), in.err
}

// indent appends the indented form of src.
func (in *indenter) indent(src []byte) {
	buf, depth, open := in.buf, in.depth, in.open
	newline := func() {
		buf = append(buf, '\n')
		for range depth {
			buf = append(buf, ' ', ' ')
		}
	}
	i := 0
	if in.inString { // a string that began in an earlier piece
		j, closed, escaped := stringEnd(src, 0, in.escaped)
		buf = append(buf, src[:j]...)
		i, in.inString, in.escaped = j, !closed, escaped
	}
	for i < len(src) {
		if in.w != nil && len(buf) >= cap(buf)-256 {
			in.buf = buf
			in.flush()
			buf = in.buf
		}
		c := src[i]
		if open && c != '}' && c != ']' {
			open = false
			depth++
			newline()
		}
		switch c {
		case '"':
			j, closed, escaped := stringEnd(src, i+1, false)
			buf = append(buf, src[i:j]...)
			i = j
			if !closed {
				in.inString, in.escaped = true, escaped
			}
			continue
		case '{', '[':
			buf = append(buf, c)
			open = true
		case '}', ']':
			if open {
				open = false
			} else {
				depth--
				newline()
			}
			buf = append(buf, c)
		case ',':
			buf = append(buf, c)
			newline()
		case ':':
			buf = append(buf, ':', ' ')
		default:
			// a number or literal: copy up to the next structural character
			j := i + 1
			for j < len(src) && !structural(src[j]) {
				j++
			}
			buf = append(buf, src[i:j]...)
			i = j
			continue
		}
		i++
	}
	in.buf, in.depth, in.open = buf, depth, open
}

// stringEnd returns the index just past the quote that closes the string whose contents
// begin at src[i] (escaped: the previous piece ended in a backslash), or len(src) and
// closed false if src ends first, with whether it ends inside an escape.
func stringEnd(src []byte, i int, escaped bool) (end int, closed, endsEscaped bool) {
	if escaped {
		if i >= len(src) {
			return i, false, true
		}
		i++
	}
	for i < len(src) {
		k := bytes.IndexByte(src[i:], '"')
		if k < 0 {
			k = len(src) - i
		}
		if b := bytes.IndexByte(src[i:i+k], '\\'); b >= 0 {
			// an escape before the quote: skip it and the character it escapes
			i += b + 2
			if i > len(src) {
				return len(src), false, true
			}
			continue
		}
		if i+k == len(src) {
			return len(src), false, false
		}
		return i + k + 1, true, false
	}
	return i, false, false
}

func structural(c byte) bool {
	switch c {
	case '"', '{', '[', '}', ']', ',', ':':
		return true
	}
	return false
}

// flush passes what is buffered on to w.
func (in *indenter) flush() error {
	if in.err == nil && len(in.buf) > 0 {
		_, in.err = in.w.Write(in.buf)
	}
	in.buf = in.buf[:0]
	return in.err
}
