package bulk

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// A CR LF inside a quoted cell reads back as CR LF; the CR LF that ends a record, a lone CR
// or LF inside a cell, and doubled quotes read as encoding/csv reads them.
func TestCSVKeepsCRLFInsideCells(t *testing.T) {
	const file = "op,reason,note\r\n" +
		"cancel,\"one\r\ntwo\",\"say \"\"hi\"\"\r\n\"\r\n" +
		"cancel,\"lone\rcr\",\"lone\nlf\"\r\n" +
		"cancel,plain,\"\"\n"
	want := [][]string{{"op", "reason", "note"}, {"cancel", "one\r\ntwo", "say \"hi\"\r\n"}, {"cancel", "lone\rcr", "lone\nlf"}, {"cancel", "plain", ""}}
	for name, r := range map[string]func() *csv.Reader{
		"whole":       func() *csv.Reader { return csv.NewReader(newKeepCRLF(strings.NewReader(file))) },
		"byte a time": func() *csv.Reader { return csv.NewReader(newKeepCRLF(iotest.OneByteReader(strings.NewReader(file)))) },
	} {
		got, err := r().ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}
