package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeFuzzFields reads "name=value" lines, the fuzzer's way of writing a map of fields.
func decodeFuzzFields(s string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if name, v, ok := strings.Cut(line, "="); ok {
			f[name] = v
		}
	}
	return f
}

// checkAccepted asserts what every accepted request must satisfy: its JSON form and its
// fields parse back to the same request with the same digest, and the JSON form is stable.
func checkAccepted(t *testing.T, op string, r Request) {
	t.Helper()
	if string(r.Op()) != op {
		t.Fatalf("parsed %s into a %s request", op, r.Op())
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("json.Marshal(%+v): %v", r, err)
	}
	fromJSON, err := ParseOperationJSON(b)
	if err != nil {
		t.Fatalf("the JSON form %s of an accepted request is refused: %v", b, err)
	}
	fromFields, err := ParseOperation(op, r.Fields())
	if err != nil {
		t.Fatalf("the fields %q of an accepted request are refused: %v", r.Fields(), err)
	}
	for name, got := range map[string]Request{"JSON": fromJSON, "fields": fromFields} {
		if diff := cmp.Diff(r, got, cmpOpts); diff != "" {
			t.Fatalf("re-parsed from its %s form %s (-want +got):\n%s", name, b, diff)
		}
		if !bytes.Equal(RequestDigest(op, r), RequestDigest(op, got)) {
			t.Fatalf("re-parsed from its %s form %s: the digest changed", name, b)
		}
		if again, _ := json.Marshal(got); !bytes.Equal(again, b) {
			t.Fatalf("re-parsed from its %s form: marshals to %s, want %s", name, again, b)
		}
	}
}

// checkRefused asserts that a refusal is a FieldErrors of named, invalid fields.
func checkRefused(t *testing.T, r Request, err error) {
	t.Helper()
	var fes FieldErrors
	if r != nil || !errors.As(err, &fes) || len(fes) == 0 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("refusal: got request %v and error %v (%T), want nil and a FieldErrors of ErrInvalid", r, err, err)
	}
	for _, fe := range fes {
		if fe.Field == "" || fe.Rule == "" {
			t.Fatalf("refusal: error %#v names no field or rule", fe)
		}
	}
}

func FuzzParseOperation(f *testing.F) {
	f.Add("deliver", "contract=CLI-1\ntonnes=300\ndate=2025-03-01\nvintage=2024\nserials="+carRange+"\nregistry_tx=TX\nallow_late=true\nprice_per_tonne=120.50\nnote=n\nkey=k")
	f.Add("deliver", "contract=C\ntonnes=1.23456\ndate=2025-02-30")
	f.Add("deliver", "contract=C\ntonnes=1e3\ndate=2025-01-01\nvintage=99999999999999999999")
	f.Add("retire", "contract=C\ntonnes=20\ndate=2025-03-10\nbeneficiary= Acme \nreason=r\nclaim=FY2025\nserials=PURO:11-30")
	f.Add("cancel", "contract=C\ndate=2025-01-01\nreason=r\nterminate=1")
	f.Add("cancel", "contract=C\ntonnes=-0\ndate=2025-01-01\nreason=r")
	f.Add("reverse", "contract=C\ntonnes=5\ndate=2025-01-01\nreason=fire\nremedy=buffer")
	f.Add("reverse", "contract=C\ntonnes=5\ndate=2025-01-01\nreason=fire\nserials=V:1-5\nop=reverse")
	f.Add("amend", `contract=C`+"\n"+`date=2025-01-01`+"\n"+`reason=r`+"\n"+`schedule=[{"year":1,"tonnes":"1","price_per_tonne":"0010.50","due_on":"2025-01-01","vintage":2024}]`)
	f.Add("amend", "contract=C\ntonnes=00012.5\ndate=2025-01-01\nreason=r")
	f.Add("revert", "entry="+strings.ToUpper(entryID)+"\nreason=typo\ndate=2025-04-01")
	f.Add("revert", "entry=42\nreason=\x00\ncolour=")
	f.Add("sell", "")
	f.Add("deliver", "=0")
	f.Fuzz(func(t *testing.T, op, encoded string) {
		fields := decodeFuzzFields(encoded)
		r, err := ParseOperation(op, fields)
		if err != nil {
			checkRefused(t, r, err)
			return
		}
		checkAccepted(t, op, r)
	})
}

func FuzzParseOperationJSON(f *testing.F) {
	for _, s := range []string{
		`{"op":"deliver","contract":"CLI-1","tonnes":"300.000","date":"2025-03-01","vintage":2024,"serials":"` + carRange + `","allow_late":true,"price_per_tonne":"120.5","key":"k1"}`,
		`{"op":"deliver","contract":"C","tonnes":12.5,"date":"2025-01-01"}`,
		`{"op":"retire","contract":"C","tonnes":"1","date":"2025-01-01","beneficiary":"B","reason":"r","vintage":null}`,
		`{"op":"cancel","contract":"C","date":"2025-01-01","reason":"r","terminate":true}`,
		`{"op":"reverse","contract":"C","tonnes":"1","date":"2025-01-01","reason":"r","remedy":"replace","serials":"P:1-1"}`,
		`{"op":"amend","contract":"C","date":"2025-01-01","reason":"r","schedule":[{"year":1,"tonnes":"5"}]}`,
		`{"op":"revert","entry":"` + entryID + `","reason":"\u00e9"}`,
		`{"op":"revert","op":"revert"}`,
		`{"":0,"":0}`,
		`{"op":"deliver"} []`,
		`[1,2]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseOperationJSON(body)
		if err != nil {
			checkRefused(t, r, err)
			return
		}
		checkAccepted(t, string(r.Op()), r)
	})
}
