package store

import (
	"encoding/json"
	"unicode/utf8"
)

// parseMetadata reads an entry's metadata, a jsonb object of strings, as json.Unmarshal into
// a map[string]string would. The common case (keys and values without escapes, as
// PostgreSQL prints them: `{"a": "b", "c": "d"}`) is read directly: encoding/json's
// reflection was a seventh of the audit's time at 5 million entries. Anything else (an
// escape, a non-string value, invalid UTF-8, odd spacing) goes to json.Unmarshal, so the
// result is always exactly its result; a fuzz test holds the two to that.
func parseMetadata(b []byte) (map[string]string, error) {
	if m, ok := parseFlatObject(b); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal(b, &m)
	return m, err
}

// parseFlatObject parses `{}` or `{"k": "v", ...}` with plain strings and the single spaces
// PostgreSQL prints after ':' and ','; ok is false for anything else.
func parseFlatObject(b []byte) (map[string]string, bool) {
	i := 0
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if c := b[j]; c == '\\' || c < 0x20 {
				return "", false
			}
			j++
		}
		if j == len(b) || !utf8.Valid(b[i+1:j]) {
			return "", false
		}
		s := string(b[i+1 : j])
		i = j + 1
		return s, true
	}
	lit := func(s string) bool {
		if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
			return false
		}
		i += len(s)
		return true
	}
	if !lit("{") {
		return nil, false
	}
	m := map[string]string{}
	if lit("}") {
		return m, i == len(b)
	}
	for {
		k, ok := str()
		if !ok || !lit(": ") {
			return nil, false
		}
		v, ok := str()
		if !ok {
			return nil, false
		}
		m[k] = v
		if lit("}") {
			return m, i == len(b)
		}
		if !lit(", ") {
			return nil, false
		}
	}
}
