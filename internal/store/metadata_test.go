package store

import (
	"encoding/json"
	"maps"

	"github.com/shopspring/decimal"
	"testing"
)

// parseMetadata must give exactly json.Unmarshal's result, or its error, for any input.
func checkMetadata(t *testing.T, b []byte) {
	t.Helper()
	var want map[string]string
	wantErr := json.Unmarshal(b, &want)
	got, err := parseMetadata(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseMetadata(%q): error %v, json.Unmarshal error %v", b, err, wantErr)
	}
	if err == nil && !maps.Equal(got, want) {
		t.Fatalf("parseMetadata(%q) = %v, json.Unmarshal = %v", b, got, want)
	}
}

func TestParseMetadataMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"a": "b"}`, `{"a": "b", "c": ""}`, `{"price_per_tonne": "31.50", "terminate": "true"}`,
		`{"a": "b", "a": "c"}`, `{"a": "caf\u00e9"}`, `{"a": "café"}`, `{"a":"b"}`, `{"a": "b" }`,
		`{"a": "q\"uote"}`, `{"a": 1}`, `{"a": null}`, `null`, `[]`, `{"a": "b"} x`, `{"a": "b",}`,
		`{"a": "\ud800"}`, "{\"a\": \"\xff\"}", "{\"a\": \"tab\there\"}", `{`, `{"a"`, `{"a": "b"`, ``,
	} {
		checkMetadata(t, []byte(s))
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"a": "b", "c": "d"}`))
	f.Add([]byte(`{"k": "v\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkMetadata(t, b) })
}

func TestParseMoney(t *testing.T) {
	for _, s := range []string{"0", "0.000", "0.0", "12.50", "-0.5", "0.001", "100", "-3"} {
		want, err := decimal.NewFromString(s)
		got, gerr := parseMoney(s)
		if err != nil || gerr != nil || !got.Equal(want) {
			t.Errorf("parseMoney(%q) = %s, %v; want %s, %v", s, got, gerr, want, err)
		}
	}
	for _, s := range []string{"", ".", "0x", "abc", "00.0.0"} {
		_, err := decimal.NewFromString(s)
		_, gerr := parseMoney(s)
		if (err == nil) != (gerr == nil) {
			t.Errorf("parseMoney(%q): error %v, decimal error %v", s, gerr, err)
		}
	}
}
