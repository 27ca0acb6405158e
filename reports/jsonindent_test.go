package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// indentCompact must write exactly what json.Indent writes, for every compact document.
func checkIndent(t *testing.T, compact []byte) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Indent(&want, compact, "", "  "); err != nil {
		t.Fatalf("json.Indent(%q): %v", compact, err)
	}
	if got := indentCompact(nil, compact); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("indentCompact(%q)\n got %q\nwant %q", compact, got, want.Bytes())
	}
	// written in pieces of every size up to 7 bytes, through a buffer that flushes often
	for size := 1; size <= 7; size++ {
		var out bytes.Buffer
		in := &indenter{w: &out, buf: make([]byte, 0, 300)}
		for i := 0; i < len(compact); i += size {
			if _, err := in.Write(compact[i:min(i+size, len(compact))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := in.flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want.Bytes()) {
			t.Fatalf("indenter in pieces of %d (%q)\n got %q\nwant %q", size, compact, out.Bytes(), want.Bytes())
		}
	}
}

func TestIndentCompactMatchesEncodingJSON(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, `""`, `0`, `null`, `{"a":[]}`, `{"a":{}}`, `[[],{},[{}]]`, `{"a":1,"b":[1,2,{"c":"d"}]}`,
		`{"q":"a \"quoted\" {string}, with: [brackets]","e":"back\\slash\\","u":"\u003chtml\u003e"}`,
		`[{"x":[{"y":[]}]},"]",":",","]`,
	} {
		checkIndent(t, []byte(doc))
	}
	// every golden JSON report, compacted
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v (%d)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		checkIndent(t, c.Bytes())
	}
}

func FuzzIndentCompact(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c\"}"}],"d":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		compact, err := json.Marshal(v)
		if err != nil {
			return
		}
		checkIndent(t, compact)
	})
}
