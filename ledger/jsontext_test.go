package ledger

import (
	"errors"
	"strings"
	"testing"
)

// JSON whose text would not decode to what it holds is refused, naming the member, as the
// CLI and CSV import refuse text that is not UTF-8: encoding/json alone would store U+FFFD
// in its place.
func TestJSONTextNotUTF8Refused(t *testing.T) {
	const head = `{"op":"deliver","contract":"C-1","tonnes":"5","date":"2025-03-01","note":`
	for _, tc := range []struct{ note, field, rule, want string }{
		{"\"caf\xe9\"", "note", "is not valid UTF-8", ""},
		{`"half \ud800 a pair"`, "note", "holds half a surrogate pair", ""},
		{`"low \udc00 alone"`, "note", "holds half a surrogate pair", ""},
		{`"reversed \udc00\ud800"`, "note", "holds half a surrogate pair", ""},
		{`"a pair \ud83d\ude00 is a character"`, "", "", "a pair 😀 is a character"},
		{`"an escaped backslash \\ud800 is text"`, "", "", `an escaped backslash \ud800 is text`},
		{`"\u00e9t\u00e9"`, "", "", "été"},
	} {
		r, err := ParseOperationJSON([]byte(head + tc.note + "}"))
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.note, err)
				continue
			}
			if got := r.(DeliverRequest).Note; got != tc.want {
				t.Errorf("%s: note %q, want %q", tc.note, got, tc.want)
			}
			continue
		}
		var fe FieldErrors
		if !errors.As(err, &fe) || fe[0].Field != tc.field || !strings.HasPrefix(fe[0].Rule, tc.rule) {
			t.Errorf("%s: got %v, want %s %s", tc.note, err, tc.field, tc.rule)
		}
	}
	// A member name that is not UTF-8.
	if _, err := ParseOperationJSON([]byte("{\"op\":\"deliver\",\"n\xffte\":\"x\"}")); err == nil {
		t.Error("a member name that is not UTF-8 was accepted")
	}
	// A contract file.
	_, err := ParseContractJSON(strings.NewReader("{\"code\":\"C-1\",\"buyer\":\"B\xe9\"}"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "contract" || fe.Rule != "is not valid UTF-8" {
		t.Errorf("contract with a buyer not in UTF-8: %v", err)
	}
	_, err = ParseContractJSON(strings.NewReader(`{"code":"C-1","buyer":"\udfff"}`))
	if !errors.As(err, &fe) || fe.Field != "contract" || !strings.HasPrefix(fe.Rule, "holds half a surrogate pair") {
		t.Errorf("contract with half a surrogate pair: %v", err)
	}
}
