package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sr parses a serial range of the test itself.
func sr(s string) *SerialRange {
	r, err := ParseSerials(s)
	if err != nil {
		panic(err)
	}
	return &r
}

const (
	carRange = "CAR-1-MX-1642-34-101-CM-2025-1 to 300"
	entryID  = "0190c3a2-0000-7000-8000-000000000000"
)

func TestParseOperation(t *testing.T) {
	tests := []struct {
		name   string
		op     string
		fields map[string]string
		want   Request
	}{
		{"deliver, the least", "deliver", map[string]string{"contract": "CLI-1", "tonnes": "300", "date": "2025-03-01"},
			DeliverRequest{Contract: "CLI-1", Tonnes: tn("300"), Date: Date(2025, 3, 1)}},
		{"deliver, everything", "deliver", map[string]string{"contract": "CLI-1", "tonnes": "300.000", "date": "2025-03-01", "vintage": "2024",
			"serials": carRange, "registry_tx": "CAR-TX-1", "allow_late": "true", "price_per_tonne": "120.50", "note": "a note", "key": "k1"},
			DeliverRequest{Contract: "CLI-1", Tonnes: tn("300"), Date: Date(2025, 3, 1), Vintage: 2024, Serials: sr(carRange),
				RegistryTx: "CAR-TX-1", AllowLate: true, PricePerTonne: dp("120.5"), Note: "a note", Key: "k1"}},
		{"deliver, text trimmed, key kept as given, flags false, empty columns of other ops", "deliver", map[string]string{
			"op": "deliver", "contract": " CLI-1 ", "tonnes": "1.5", "date": "2025-03-01", "note": "  spaced  ", "key": " k ",
			"allow_late": "false", "beneficiary": "", "remedy": "", "entry": "", "schedule": ""},
			DeliverRequest{Contract: "CLI-1", Tonnes: tn("1.5"), Date: Date(2025, 3, 1), Note: "spaced", Key: " k "}},
		{"retire", "retire", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-03-10", "beneficiary": "Acme Buyer",
			"reason": "2025 claim", "claim": "FY2025", "serials": "PURO:11-30", "vintage": "2024"},
			RetireRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 3, 10), Beneficiary: "Acme Buyer", Reason: "2025 claim",
				Claim: "FY2025", Serials: sr("PURO:11-30"), Vintage: 2024}},
		{"cancel some", "cancel", map[string]string{"contract": "CLI-1", "tonnes": "100", "date": "2025-06-30", "reason": "shortfall waived"},
			CancelRequest{Contract: "CLI-1", Tonnes: tn("100"), Date: Date(2025, 6, 30), Reason: "shortfall waived"}},
		{"terminate", "cancel", map[string]string{"contract": "CLI-2Y", "terminate": "true", "date": "2025-09-01", "reason": "supplier exit"},
			CancelRequest{Contract: "CLI-2Y", Date: Date(2025, 9, 1), Reason: "supplier exit", Terminate: true}},
		{"reverse, remedy by default replace", "reverse", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-02", "reason": "fire", "serials": "PURO:11-30"},
			ReverseRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 7, 2), Reason: "fire", Remedy: RemedyReplace, Serials: sr("PURO:11-30")}},
		{"reverse from the buffer", "reverse", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-01", "reason": "wildfire", "remedy": "buffer"},
			ReverseRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 7, 1), Reason: "wildfire", Remedy: RemedyBuffer}},
		{"amend the tonnes", "amend", map[string]string{"contract": "CLI-1", "tonnes": "1200", "date": "2025-07-03", "reason": "more volume"},
			AmendRequest{Contract: "CLI-1", Tonnes: tp("1200"), Date: Date(2025, 7, 3), Reason: "more volume"}},
		{"amend the schedule", "amend", map[string]string{"contract": "CLI-2Y", "date": "2025-02-01", "reason": "re-phased",
			"schedule": `[{"year":1,"tonnes":"500","vintage":2025,"price_per_tonne":"99.90","due_on":"2025-12-31"},{"year":2,"tonnes":"1500"}]`},
			AmendRequest{Contract: "CLI-2Y", Date: Date(2025, 2, 1), Reason: "re-phased", Schedule: []ScheduleLine{
				{Year: 1, Tonnes: tn("500"), Vintage: 2025, PricePerTonne: dp("99.9"), DueOn: Date(2025, 12, 31)}, {Year: 2, Tonnes: tn("1500")}}}},
		{"revert, id lower-cased", "revert", map[string]string{"entry": strings.ToUpper(entryID), "reason": "typo"},
			RevertRequest{Entry: entryID, Reason: "typo"}},
		{"revert on a date", "revert", map[string]string{"entry": entryID, "reason": "typo", "date": "2025-04-01", "key": "fix-1"},
			RevertRequest{Entry: entryID, Reason: "typo", Date: Date(2025, 4, 1), Key: "fix-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOperation(tt.op, tt.fields)
			if err != nil {
				t.Fatalf("ParseOperation: got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("ParseOperation (-want +got):\n%s", diff)
			}
			if got.Op() != Op(tt.op) {
				t.Errorf("Op: got %s, want %s", got.Op(), tt.op)
			}
			if !bytes.Equal(RequestDigest(tt.op, got), RequestDigest(tt.op, tt.want)) {
				t.Errorf("RequestDigest of the parsed request differs from that of the same request built by hand")
			}
			wantCode := tt.fields["contract"]
			if tt.op == "revert" {
				wantCode = ""
			}
			if got.ContractCode() != strings.TrimSpace(wantCode) || got.IdempotencyKey() != tt.fields["key"] {
				t.Errorf("ContractCode, IdempotencyKey: got %q, %q", got.ContractCode(), got.IdempotencyKey())
			}
		})
	}
}

// fieldWant is one error a bad request must report.
type fieldWant struct {
	field, fragment string
	kind            error // nil: ErrInvalid
}

func TestParseOperationErrors(t *testing.T) {
	deliver := func(change map[string]string) map[string]string {
		f := map[string]string{"contract": "CLI-1", "tonnes": "10", "date": "2025-03-01"}
		for k, v := range change {
			f[k] = v
		}
		return f
	}
	tests := []struct {
		name   string
		op     string
		fields map[string]string
		want   []fieldWant
	}{
		{"unknown operation", "frobnicate", nil, []fieldWant{{"op", `"frobnicate" is not an operation (deliver, retire, cancel, reverse, amend, revert)`, nil}}},
		{"op field of another operation", "deliver", deliver(map[string]string{"op": "retire"}), []fieldWant{{"op", `"retire" does not match the operation deliver`, nil}}},
		{"nothing given", "deliver", map[string]string{}, []fieldWant{
			{"contract", "contract: is required", ErrRequired}, {"tonnes", "is required", ErrRequired}, {"date", "is required (YYYY-MM-DD)", ErrRequired}}},
		{"every field wrong at once, in field order", "deliver", map[string]string{"note": "a\x00b", "date": "2025-02-30", "tonnes": "1.23456",
			"contract": "no spaces", "vintage": "24", "serials": "nope", "registry_tx": strings.Repeat("x", 201), "allow_late": "maybe", "price_per_tonne": "1e2", "key": strings.Repeat("k", 201)},
			[]fieldWant{{"contract", `"no spaces" must be 1 to 48 letters`, nil}, {"tonnes", `tonnes: "1.23456" has more than 3 decimal places`, nil},
				{"date", `"2025-02-30" is not a date in the form YYYY-MM-DD`, nil}, {"vintage", `"24" is not a year between 1990 and 2200`, nil},
				{"serials", `"nope" is not a serial range`, nil}, {"registry_tx", "is too long (201 bytes, at most 200)", nil},
				{"allow_late", `"maybe" is not true or false`, nil}, {"price_per_tonne", `"1e2" uses an exponent`, nil},
				{"note", "contains a NUL character", nil}, {"key", "is too long (201 bytes, at most 200)", nil}}},
		{"exponent", "deliver", deliver(map[string]string{"tonnes": "1e3"}), []fieldWant{{"tonnes", "uses an exponent", nil}}},
		{"NaN", "deliver", deliver(map[string]string{"tonnes": "NaN"}), []fieldWant{{"tonnes", "is not a finite number", nil}}},
		{"negative", "deliver", deliver(map[string]string{"tonnes": "-5"}), []fieldWant{{"tonnes", `"-5" must be greater than zero`, nil}}},
		{"zero", "deliver", deliver(map[string]string{"tonnes": "0.000"}), []fieldWant{{"tonnes", "must be greater than zero", nil}}},
		{"separators", "deliver", deliver(map[string]string{"tonnes": "1,000"}), []fieldWant{{"tonnes", "digit separators", nil}}},
		{"date not ISO", "deliver", deliver(map[string]string{"date": "01/03/2025"}), []fieldWant{{"date", "is not a date in the form YYYY-MM-DD", nil}}},
		{"date out of range", "deliver", deliver(map[string]string{"date": "1989-12-31"}), []fieldWant{{"date", "is outside the years 1990 to 2200", nil}}},
		{"vintage not digits", "deliver", deliver(map[string]string{"vintage": "+2024"}), []fieldWant{{"vintage", "is not a year", nil}}},
		{"vintage too late", "deliver", deliver(map[string]string{"vintage": "2201"}), []fieldWant{{"vintage", "is not a year between 1990 and 2200", nil}}},
		{"vintage zero", "deliver", deliver(map[string]string{"vintage": "0"}), []fieldWant{{"vintage", "is not a year", nil}}},
		{"serials reversed", "deliver", deliver(map[string]string{"serials": "P:10-5"}), []fieldWant{{"serials", "ends before it starts", nil}}},
		{"serials and tonnes disagree", "deliver", deliver(map[string]string{"serials": "P:1-9"}), []fieldWant{{"serials", "holds 9 serials", nil}}},
		{"price negative", "deliver", deliver(map[string]string{"price_per_tonne": "-1"}), []fieldWant{{"price_per_tonne", "must not be negative", nil}}},
		{"price too fine", "deliver", deliver(map[string]string{"price_per_tonne": "1.123456789"}), []fieldWant{{"price_per_tonne", "more than 8 decimal places", nil}}},
		{"unknown field", "deliver", deliver(map[string]string{"colour": ""}), []fieldWant{{"colour", "is not a field of deliver (its fields are contract, tonnes, date,", nil}}},
		{"field of another operation", "deliver", deliver(map[string]string{"beneficiary": "Acme"}), []fieldWant{{"beneficiary", "is not a field of deliver", nil}}},
		{"retire without beneficiary and reason", "retire", map[string]string{"contract": "C", "tonnes": "1", "date": "2025-01-01", "beneficiary": "  "},
			[]fieldWant{{"beneficiary", "is required", ErrRequired}, {"reason", "is required", ErrRequired}}},
		{"retire texts too long", "retire", map[string]string{"contract": "C", "tonnes": "1", "date": "2025-01-01",
			"beneficiary": strings.Repeat("b", 201), "reason": strings.Repeat("r", 501), "claim": strings.Repeat("c", 41)},
			[]fieldWant{{"beneficiary", "at most 200", nil}, {"reason", "at most 500", nil}, {"claim", "at most 40", nil}}},
		{"reason not UTF-8", "cancel", map[string]string{"contract": "C", "tonnes": "1", "date": "2025-01-01", "reason": "\xff"},
			[]fieldWant{{"reason", "is not valid UTF-8", nil}}},
		{"cancel without tonnes or terminate", "cancel", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r"},
			[]fieldWant{{"tonnes", "is required, or terminate", ErrRequired}}},
		{"terminate not a flag", "cancel", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r", "terminate": "yes"},
			[]fieldWant{{"terminate", `"yes" is not true or false`, nil}}},
		{"remedy unknown", "reverse", map[string]string{"contract": "C", "tonnes": "1", "date": "2025-01-01", "reason": "fire", "remedy": "insurance"},
			[]fieldWant{{"remedy", `"insurance" must be replace or buffer`, nil}}},
		{"serials with remedy buffer", "reverse", map[string]string{"contract": "C", "tonnes": "1", "date": "2025-01-01", "reason": "fire", "remedy": "buffer", "serials": "P:1-1"},
			[]fieldWant{{"serials", "are not taken with remedy buffer", nil}}},
		{"amend without tonnes or schedule", "amend", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r"},
			[]fieldWant{{"tonnes", "is required unless a schedule is given", ErrRequired}}},
		{"amend with an empty schedule", "amend", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r", "schedule": "[]"},
			[]fieldWant{{"schedule", "is an empty list", nil}}},
		{"amend with a schedule that is not JSON", "amend", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r", "schedule": "[{1"},
			[]fieldWant{{"schedule", "is not valid JSON at byte", nil}}},
		{"amend with a bad schedule line", "amend", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r", "schedule": `[{"year":1,"tonnes":"-1"}]`},
			[]fieldWant{{"schedule[0].tonnes", "must be greater than zero", nil}}},
		{"amend with content after the schedule", "amend", map[string]string{"contract": "C", "date": "2025-01-01", "reason": "r", "schedule": `[{"year":1,"tonnes":"1"}] x`},
			[]fieldWant{{"schedule", "has content after the list", nil}}},
		{"revert without entry and reason", "revert", map[string]string{}, []fieldWant{{"entry", "is required", ErrRequired}, {"reason", "is required", ErrRequired}}},
		{"revert of a malformed id", "revert", map[string]string{"entry": "42", "reason": "x"}, []fieldWant{{"entry", `"42" is not an entry id`, nil}}},
		{"revert takes no contract", "revert", map[string]string{"entry": entryID, "reason": "x", "contract": "C"}, []fieldWant{{"contract", "is not a field of revert", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseOperation(tt.op, tt.fields)
			if r != nil {
				t.Errorf("ParseOperation: got request %#v alongside the error, want nil", r)
			}
			wantFieldErrors(t, err, tt.want)
		})
	}
}

// wantFieldErrors fails unless err is a FieldErrors holding exactly the wanted errors, in order.
func wantFieldErrors(t *testing.T, err error, want []fieldWant) {
	t.Helper()
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("got error %v (%T), want FieldErrors", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid): got false, want true")
	}
	if len(fes) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(fes), len(want), err)
	}
	for i, w := range want {
		kind := w.kind
		if kind == nil {
			kind = ErrInvalid
		}
		wantFieldError(t, fes[i], w.field, kind, w.fragment)
		if w.kind == nil && errors.Is(fes[i], ErrRequired) {
			t.Errorf("error %d (%v): got kind ErrRequired, want a value error", i, fes[i])
		}
	}
}

// TestRequestDigestUnchanged pins the digests that the requests written before ParseOperation
// existed got: ledgers hold them to recognise replays, so the same request must keep its
// digest, whether built by hand (the demo) or parsed from any spelling of its fields.
func TestRequestDigestUnchanged(t *testing.T) {
	tests := []struct {
		r      Request
		fields map[string]string
		want   string
	}{
		{DeliverRequest{Contract: "CLI-1", Tonnes: tn("300"), Date: Date(2025, 3, 1), Vintage: 2024, Serials: sr(carRange), RegistryTx: "CAR-TX-1", Key: "k"},
			map[string]string{"contract": "CLI-1", "tonnes": "300", "date": "2025-03-01", "vintage": "2024", "serials": carRange, "registry_tx": "CAR-TX-1", "key": "other"},
			"c1a69930ca92e55ded915ce88702d7c8e96c5f55dce5a5d2386e05e025146898"},
		{DeliverRequest{Contract: "CLI-1", Tonnes: tn("12.5"), Date: Date(2025, 3, 15), AllowLate: true, PricePerTonne: dp("120.50"), Note: "a note"},
			map[string]string{"contract": "CLI-1", "tonnes": "12.500", "date": "2025-03-15", "allow_late": "true", "price_per_tonne": "120.5000", "note": " a note "},
			"abb15fe4fb8a49b472d961ac98e961d56fc4c7820728b51ebee71b6205f8e2d6"},
		{RetireRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 3, 10), Beneficiary: "Acme Buyer", Reason: "2025 claim", Claim: "FY2025", Serials: sr("PURO:11-30"), Vintage: 2024},
			map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-03-10", "beneficiary": "Acme Buyer", "reason": "2025 claim", "claim": "FY2025", "serials": "PURO:11-30", "vintage": "2024"},
			"b36ed7e708e0eaac44c801265c29387dc0814026938d5dc31390109b28fc3947"},
		{CancelRequest{Contract: "CLI-2Y", Date: Date(2025, 9, 1), Reason: "supplier exit", Terminate: true},
			map[string]string{"contract": "CLI-2Y", "date": "2025-09-01", "reason": "supplier exit", "terminate": "true"},
			"b5a0f89b3a5719687ee126b992c7ee7e604364874b381fb94ea1dae80eebbc9c"},
		{CancelRequest{Contract: "CLI-1", Tonnes: tn("100"), Date: Date(2025, 6, 30), Reason: "shortfall waived"},
			map[string]string{"contract": "CLI-1", "tonnes": "100.0", "date": "2025-06-30", "reason": "shortfall waived", "terminate": "false"},
			"24dfe500f8e4adb8710b24a03f87db55468ba1f689d952633494c4ba399e4035"},
		{ReverseRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 7, 1), Reason: "wildfire", Remedy: RemedyBuffer},
			map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-01", "reason": "wildfire", "remedy": "buffer"},
			"8f349b3311dff82a497b8814ef3ef00302624f6c0785c71842ee3ef83de6da8c"},
		{ReverseRequest{Contract: "CLI-1", Tonnes: tn("20"), Date: Date(2025, 7, 2), Reason: "fire", Remedy: RemedyReplace, Serials: sr("PURO:11-30")},
			map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-02", "reason": "fire", "serials": "PURO:11-30"},
			"0fe322ac18560bbc49e7b94a363dd0e737dfe3f31aac95544d34b446e70278e9"},
		{AmendRequest{Contract: "CLI-1", Tonnes: tp("1200"), Date: Date(2025, 7, 3), Reason: "more volume"},
			map[string]string{"contract": "CLI-1", "tonnes": "1200", "date": "2025-07-03", "reason": "more volume"},
			"49a21c6d2a6fe98b1db95f598b754819002c1c2dc31a9a75dc2ab1af7a336aaf"},
		{AmendRequest{Contract: "CLI-2Y", Date: Date(2025, 2, 1), Reason: "re-phased", Schedule: []ScheduleLine{
			{Year: 1, Tonnes: tn("500"), Vintage: 2025, PricePerTonne: dp("99.9"), DueOn: Date(2025, 12, 31)}, {Year: 2, Tonnes: tn("1500")}}},
			map[string]string{"contract": "CLI-2Y", "date": "2025-02-01", "reason": "re-phased",
				"schedule": `[{"year":1,"tonnes":"500.0","vintage":2025,"price_per_tonne":"99.90","due_on":"2025-12-31"},{"year":2,"tonnes":"1500"}]`},
			"a27dad7c938d03930d69c82460fa766519d0afd6a2b29544ffbc52d7d533759f"},
		{RevertRequest{Entry: entryID, Reason: "typo"},
			map[string]string{"entry": entryID, "reason": "typo"},
			"a922644dd7278cbf0b4e6883d723c46d75e33652521af635a9b0edc032b48766"},
		{RevertRequest{Entry: entryID, Reason: "typo", Date: Date(2025, 4, 1)},
			map[string]string{"entry": entryID, "reason": "typo", "date": "2025-04-01"},
			"f83b4b97ca7f2b1a0134b9191906e38ab0ce943d4e892511b29bc5491d2aaeca"},
	}
	for _, tt := range tests {
		op := string(tt.r.Op())
		if got := hex.EncodeToString(RequestDigest(op, tt.r)); got != tt.want {
			t.Errorf("RequestDigest(%s, %+v): got %s, want %s (the digest of a stored request changed)", op, tt.r, got, tt.want)
		}
		parsed, err := ParseOperation(op, tt.fields)
		if err != nil {
			t.Errorf("ParseOperation(%s, %v): %v", op, tt.fields, err)
			continue
		}
		if got := hex.EncodeToString(RequestDigest(op, parsed)); got != tt.want {
			t.Errorf("RequestDigest of %s parsed from %v: got %s, want %s", op, tt.fields, got, tt.want)
		}
	}
	d := tests[0].r.(DeliverRequest)
	if !bytes.Equal(RequestDigest("deliver", d), RequestDigest("deliver", &d)) {
		t.Errorf("RequestDigest of a pointer to a request differs from that of the value")
	}
}

// requestSamples returns one parsed request of every shape TestParseOperation accepts.
func requestSamples(t *testing.T) []Request {
	t.Helper()
	samples := []struct {
		op     string
		fields map[string]string
	}{
		{"deliver", map[string]string{"contract": "CLI-1", "tonnes": "300", "date": "2025-03-01", "vintage": "2024", "serials": carRange,
			"registry_tx": "CAR-TX-1", "allow_late": "true", "price_per_tonne": "120.50", "note": "<a & b>", "key": "k1"}},
		{"deliver", map[string]string{"contract": "CLI-1", "tonnes": "0.001", "date": "2025-03-01"}},
		{"retire", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-03-10", "beneficiary": "Acme Buyer", "reason": "claim",
			"claim": "FY2025", "serials": "PURO:11-30", "vintage": "2024", "key": "r-1"}},
		{"cancel", map[string]string{"contract": "CLI-1", "tonnes": "100", "date": "2025-06-30", "reason": "waived"}},
		{"cancel", map[string]string{"contract": "CLI-2Y", "terminate": "true", "date": "2025-09-01", "reason": "exit"}},
		{"reverse", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-02", "reason": "fire", "serials": "PURO:11-30"}},
		{"reverse", map[string]string{"contract": "CLI-1", "tonnes": "20", "date": "2025-07-01", "reason": "fire", "remedy": "buffer"}},
		{"amend", map[string]string{"contract": "CLI-1", "tonnes": "1200", "date": "2025-07-03", "reason": "more"}},
		{"amend", map[string]string{"contract": "CLI-2Y", "tonnes": "2000", "date": "2025-02-01", "reason": "re-phased",
			"schedule": `[{"year":1,"tonnes":"500","vintage":2025,"price_per_tonne":"99.90","due_on":"2025-12-31"},{"year":2,"tonnes":"1500"}]`}},
		{"revert", map[string]string{"entry": entryID, "reason": "typo"}},
		{"revert", map[string]string{"entry": entryID, "reason": "typo", "date": "2025-04-01", "key": "fix"}},
	}
	var out []Request
	for _, s := range samples {
		r, err := ParseOperation(s.op, s.fields)
		if err != nil {
			t.Fatalf("ParseOperation(%s, %v): %v", s.op, s.fields, err)
		}
		out = append(out, r)
	}
	return out
}

// newRequest returns a pointer to a zero request of op, for json.Unmarshal.
func newRequest(op Op) any {
	switch op {
	case OpDeliver:
		return new(DeliverRequest)
	case OpRetire:
		return new(RetireRequest)
	case OpCancel:
		return new(CancelRequest)
	case OpReverse:
		return new(ReverseRequest)
	case OpAmend:
		return new(AmendRequest)
	case OpRevert:
		return new(RevertRequest)
	}
	panic(op)
}

// deref returns the request a newRequest pointer holds.
func deref(p any) Request {
	switch p := p.(type) {
	case *DeliverRequest:
		return *p
	case *RetireRequest:
		return *p
	case *CancelRequest:
		return *p
	case *ReverseRequest:
		return *p
	case *AmendRequest:
		return *p
	case *RevertRequest:
		return *p
	}
	panic(p)
}

func TestRequestJSONRoundTrip(t *testing.T) {
	for _, r := range requestSamples(t) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", r, err)
		}
		// The JSON path: an NDJSON line naming its op, and an HTTP body decoded into the
		// request type of its route.
		fromLine, err := ParseOperationJSON(b)
		if err != nil {
			t.Fatalf("ParseOperationJSON(%s): %v", b, err)
		}
		typed := newRequest(r.Op())
		if err := json.Unmarshal(b, typed); err != nil {
			t.Fatalf("json.Unmarshal(%s) into %T: %v", b, typed, err)
		}
		// The fields path.
		fromFields, err := ParseOperation(string(r.Op()), r.Fields())
		if err != nil {
			t.Fatalf("ParseOperation(%s, %v): %v", r.Op(), r.Fields(), err)
		}
		for name, got := range map[string]Request{"ParseOperationJSON": fromLine, "json.Unmarshal": deref(typed), "ParseOperation(Fields)": fromFields} {
			if diff := cmp.Diff(r, got, cmpOpts); diff != "" {
				t.Errorf("%s of %s (-want +got):\n%s", name, b, diff)
			}
			if !bytes.Equal(RequestDigest(string(r.Op()), r), RequestDigest(string(got.Op()), got)) {
				t.Errorf("%s of %s: got another digest", name, b)
			}
			again, _ := json.Marshal(got)
			if !bytes.Equal(again, b) {
				t.Errorf("%s of %s re-marshals to %s, want the same bytes", name, b, again)
			}
		}
	}
}

func TestRequestJSONForm(t *testing.T) {
	rs := requestSamples(t)
	tests := []struct {
		r    Request
		want string
	}{
		{rs[0], `{"op":"deliver","contract":"CLI-1","tonnes":"300.000","date":"2025-03-01","vintage":2024,"serials":"` + carRange +
			`","registry_tx":"CAR-TX-1","allow_late":true,"price_per_tonne":"120.5","note":"\u003ca \u0026 b\u003e","key":"k1"}`},
		{rs[4], `{"op":"cancel","contract":"CLI-2Y","date":"2025-09-01","reason":"exit","terminate":true}`},
		{rs[6], `{"op":"reverse","contract":"CLI-1","tonnes":"20.000","date":"2025-07-01","reason":"fire","remedy":"buffer"}`},
		{rs[8], `{"op":"amend","contract":"CLI-2Y","tonnes":"2000.000","schedule":[{"year":1,"tonnes":"500.000","vintage":2025,"price_per_tonne":"99.9","due_on":"2025-12-31"},{"year":2,"tonnes":"1500.000"}],"date":"2025-02-01","reason":"re-phased"}`},
		{rs[10], `{"op":"revert","entry":"` + entryID + `","date":"2025-04-01","reason":"typo","key":"fix"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.r)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%+v):\ngot  %s, %v\nwant %s", tt.r, b, err, tt.want)
		}
	}
	// Inside another value (an API response or a batch) the form is the same.
	b, err := json.Marshal(map[string]any{"requests": []Request{rs[4]}})
	if want := `{"requests":[` + tests[1].want + `]}`; err != nil || string(b) != want {
		t.Errorf("json.Marshal of a list of requests: got %s, %v, want %s", b, err, want)
	}
}

func TestRequestJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []fieldWant
	}{
		{"a bare number for tonnes", `{"op":"deliver","contract":"C","tonnes":12.5,"date":"2025-01-01"}`,
			[]fieldWant{{"tonnes", `must be a JSON string such as "12.500", not a bare number`, nil}}},
		{"a bare number for the price", `{"op":"deliver","contract":"C","tonnes":"1","date":"2025-01-01","price_per_tonne":12}`,
			[]fieldWant{{"price_per_tonne", "not a bare number", nil}}},
		{"unknown member", `{"op":"deliver","contract":"C","tonnes":"1","date":"2025-01-01","colour":"red"}`,
			[]fieldWant{{"colour", "is not a field of deliver", nil}}},
		{"unknown member, null", `{"op":"deliver","contract":"C","tonnes":"1","date":"2025-01-01","colour":null}`,
			[]fieldWant{{"colour", "is not a field of deliver", nil}}},
		{"member twice", `{"op":"deliver","contract":"C","tonnes":"1","tonnes":"2","date":"2025-01-01"}`,
			[]fieldWant{{"tonnes", "appears more than once", nil}}},
		{"vintage as a string", `{"op":"deliver","contract":"C","tonnes":"1","date":"2025-01-01","vintage":"2024"}`,
			[]fieldWant{{"vintage", "must be a JSON number", nil}}},
		{"vintage with a fraction", `{"op":"deliver","contract":"C","tonnes":"1","date":"2025-01-01","vintage":2024.5}`,
			[]fieldWant{{"vintage", `"2024.5" is not a year`, nil}}},
		{"terminate as a string", `{"op":"cancel","contract":"C","date":"2025-01-01","reason":"r","terminate":"true"}`,
			[]fieldWant{{"terminate", "must be true or false", nil}}},
		{"schedule as an object", `{"op":"amend","contract":"C","date":"2025-01-01","reason":"r","schedule":{"year":1}}`,
			[]fieldWant{{"schedule", "must be a JSON list", nil}}},
		{"a wrong type and a missing field", `{"op":"retire","contract":7,"tonnes":"1","date":"2025-01-01","reason":"r"}`,
			[]fieldWant{{"contract", "must be a JSON string", nil}, {"beneficiary", "is required", ErrRequired}}},
		{"null and empty strings are left out", `{"op":"retire","contract":"C","tonnes":"1","date":"2025-01-01","beneficiary":null,"reason":""}`,
			[]fieldWant{{"beneficiary", "is required", ErrRequired}, {"reason", "is required", ErrRequired}}},
		{"no op", `{"contract":"C"}`, []fieldWant{{"op", "is required", ErrRequired}}},
		{"op not a string", `{"op":1}`, []fieldWant{{"op", "must be a JSON string", nil}}},
		{"unknown op", `{"op":"sell"}`, []fieldWant{{"op", `"sell" is not an operation`, nil}}},
		{"not an object", `["deliver"]`, []fieldWant{{"request", "must be a JSON object", nil}}},
		{"empty", ``, []fieldWant{{"request", "is empty", nil}}},
		{"not JSON", `{"op":"deliver",`, []fieldWant{{"request", "is not valid JSON", nil}}},
		{"content after the object", `{"op":"revert","entry":"` + entryID + `","reason":"x"} {}`, []fieldWant{{"request", "has content after the JSON object", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseOperationJSON([]byte(tt.body))
			if r != nil {
				t.Errorf("got request %#v alongside the error", r)
			}
			wantFieldErrors(t, err, tt.want)
		})
	}

	// A body decoded into its route's request type needs no op, and may not name another.
	var d DeliverRequest
	if err := json.Unmarshal([]byte(`{"contract":"C","tonnes":"1.5","date":"2025-01-01"}`), &d); err != nil || !d.Tonnes.Equal(tn("1.5")) {
		t.Errorf("json.Unmarshal without op: got %+v, %v", d, err)
	}
	wantFieldErrors(t, json.Unmarshal([]byte(`{"op":"retire","contract":"C","tonnes":"1","date":"2025-01-01"}`), &d),
		[]fieldWant{{"op", `"retire" does not match the operation deliver`, nil}})
	// Nested in another value, the errors come through as they are.
	var batch struct{ Deliveries []DeliverRequest }
	err := json.Unmarshal([]byte(`{"Deliveries":[{"contract":"C","tonnes":1,"date":"2025-13-01"}]}`), &batch)
	wantFieldErrors(t, err, []fieldWant{{"tonnes", "not a bare number", nil}, {"date", "is not a date", nil}})
}

func TestCheckEffectiveDate(t *testing.T) {
	now := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 2026-03-02 in UTC
	tests := []struct {
		d    time.Time
		tol  time.Duration
		rule string // "" for no error
	}{
		{Date(2026, 3, 2), 0, ""},
		{Date(2026, 3, 3), 0, "is in the future (today is 2026-03-02; at most 0s ahead is allowed)"},
		{Date(2026, 3, 3), 24 * time.Hour, ""},
		{Date(2026, 3, 4), 24 * time.Hour, "at most 24h0m0s ahead"},
		{Date(1990, 1, 1), 0, ""},
	}
	for _, tt := range tests {
		err := CheckEffectiveDate(tt.d, now, tt.tol)
		if tt.rule == "" {
			if err != nil {
				t.Errorf("CheckEffectiveDate(%s, tolerance %s): got %v, want nil", FormatDate(tt.d), tt.tol, err)
			}
			continue
		}
		wantFieldError(t, err, "date", ErrInvalid, tt.rule)
	}
	for _, r := range requestSamples(t) {
		if err := r.Check(now, 0); err != nil {
			t.Errorf("%s.Check: got %v, want nil for a date in the past", r.Op(), err)
		}
	}
	future := DeliverRequest{Contract: "C", Tonnes: tn("1"), Date: Date(2099, 1, 1)}
	wantFieldError(t, future.Check(now, 24*time.Hour), "date", ErrInvalid, `"2099-01-01" is in the future`)
	if err := (RevertRequest{Entry: entryID, Reason: "x"}).Check(now, 0); err != nil {
		t.Errorf("RevertRequest.Check without a date: got %v, want nil (the store checks the original's date)", err)
	}
}

func TestFieldErrors(t *testing.T) {
	_, err := ParseOperation("retire", map[string]string{"contract": "C", "tonnes": "1.2345", "date": "2025-01-01"})
	want := `tonnes: "1.2345" has more than 3 decimal places (the finest unit is 1 kg); beneficiary: is required; reason: is required`
	if err == nil || err.Error() != want {
		t.Errorf("Error: got %v, want %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "tonnes" {
		t.Errorf("errors.As(*FieldError): got %v, want the first error (tonnes)", fe)
	}
	if !errors.Is(err, ErrRequired) || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
		t.Errorf("errors.Is: want ErrRequired and ErrInvalid, not ErrNotFound")
	}
	var fes FieldErrors
	errors.As(err, &fes)
	renamed := fes.Rename(func(f string) string { return "--" + f })
	if got := renamed.Error(); !strings.HasPrefix(got, `--tonnes: "1.2345"`) || !strings.Contains(got, "; --reason: is required") {
		t.Errorf("Rename: got %s", got)
	}
	if fes[0].Field != "tonnes" {
		t.Errorf("Rename changed the original: %v", fes[0])
	}
	if got := OpFields(OpRevert); strings.Join(got, ",") != "entry,date,reason,key" {
		t.Errorf("OpFields(revert): got %v", got)
	}
	for _, op := range Ops {
		for _, f := range OpFields(op) {
			if _, ok := fieldTypes[f]; !ok {
				t.Errorf("field %s of %s has no JSON type", f, op)
			}
		}
	}
}

func TestRepeatedMember(t *testing.T) {
	for in, want := range map[string]string{
		`{"tonnes":"1","date":"2025-01-01"}`:      "",
		`{"tonnes":"1","tonnes":"2"}`:             "tonnes",
		`{"a":{"x":1,"x":2},"b":[{"y":1,"y":1}]}`: "", // only the object's own members
		`{"op":"deliver","o\u0070":"retire"}`:     "op",
		`{"":1,"":2}`:                             "", // no name: refused as such
		`[{"a":1,"a":1}]`:                         "",
		`{"a":1,"a":`:                             "",
		`not json`:                                "",
		`{"a":1} {"a":2}`:                         "",
	} {
		got, ok := RepeatedMember([]byte(in))
		if got != want || ok != (want != "") {
			t.Errorf("RepeatedMember(%s): got %q, %v, want %q", in, got, ok, want)
		}
	}
}
