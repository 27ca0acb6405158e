package ledger

import (
	"errors"
	"strings"
	"testing"
)

// A contract or schedule larger than the limit is refused as too large, not cut short and
// then called broken JSON.
func TestJSONDocumentTooLarge(t *testing.T) {
	pad := strings.Repeat(" ", maxJSONDoc)
	var fe *FieldError
	_, err := ParseContractJSON(strings.NewReader(`{"code":"C-1"` + pad + `}`))
	if !errors.As(err, &fe) || fe.Field != "contract" || fe.Rule != "is larger than 1 MiB" {
		t.Errorf("a contract over 1 MiB: %v", err)
	}
	_, err = ParseScheduleJSON(strings.NewReader(`[{"year":1,"tonnes":"1"}` + pad + `]`))
	if !errors.As(err, &fe) || fe.Field != "schedule" || fe.Rule != "is larger than 1 MiB" {
		t.Errorf("a schedule over 1 MiB: %v", err)
	}
	if _, err := ParseScheduleJSON(strings.NewReader(`[{"year":1,"tonnes":"1"}]` + strings.Repeat(" ", maxJSONDoc-100))); err != nil {
		t.Errorf("a schedule just under 1 MiB: %v", err)
	}
}
