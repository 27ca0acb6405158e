package reports

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
)

func TestPeriods(t *testing.T) {
	type span struct{ label, start, end string }
	tests := []struct {
		name    string
		years   []int
		fyStart int
		want    []span
	}{
		{"calendar years", []int{2024, 2025}, 1, []span{{"2024", "2024-01-01", "2024-12-31"}, {"2025", "2025-01-01", "2025-12-31"}}},
		{"leap calendar year", []int{2028}, 1, []span{{"2028", "2028-01-01", "2028-12-31"}}},
		{"fiscal year from July (Microsoft)", []int{2025}, 7, []span{{"FY2025", "2024-07-01", "2025-06-30"}}},
		{"fiscal years from July side by side", []int{2024, 2025, 2026}, 7, []span{
			{"FY2024", "2023-07-01", "2024-06-30"}, {"FY2025", "2024-07-01", "2025-06-30"}, {"FY2026", "2025-07-01", "2026-06-30"}}},
		{"fiscal year from April", []int{2025}, 4, []span{{"FY2025", "2024-04-01", "2025-03-31"}}},
		{"fiscal year from March ends on a leap day", []int{2024}, 3, []span{{"FY2024", "2023-03-01", "2024-02-29"}}},
		{"fiscal year from February", []int{2025}, 2, []span{{"FY2025", "2024-02-01", "2025-01-31"}}},
		{"fiscal year from December", []int{2025}, 12, []span{{"FY2025", "2024-12-01", "2025-11-30"}}},
		{"no years", nil, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Periods(tt.years, tt.fyStart)
			if err != nil {
				t.Fatalf("Periods(%v, %d): %v", tt.years, tt.fyStart, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Periods(%v, %d) = %d periods, want %d", tt.years, tt.fyStart, len(got), len(tt.want))
			}
			for i, p := range got {
				g := span{p.Label, ledger.FormatDate(p.Start), ledger.FormatDate(p.End)}
				if g != tt.want[i] {
					t.Errorf("period %d = %v, want %v", i, g, tt.want[i])
				}
			}
			// consecutive periods tile the range: each starts the day after the last ended
			for i := 1; i < len(got); i++ {
				if !got[i].Start.Equal(got[i-1].End.AddDate(0, 0, 1)) {
					t.Errorf("period %s starts %s, want the day after %s ends (%s)", got[i].Label, ledger.FormatDate(got[i].Start),
						got[i-1].Label, ledger.FormatDate(got[i-1].End))
				}
			}
		})
	}
}

func TestPeriodsRefusesBadInput(t *testing.T) {
	tests := []struct {
		years   []int
		fyStart int
		field   string
	}{
		{[]int{2025}, 0, "--fiscal-year-start"},
		{[]int{2025}, 13, "--fiscal-year-start"},
		{[]int{2025}, -7, "--fiscal-year-start"},
		{[]int{1989}, 1, "--year"},
		{[]int{2024, 2201}, 7, "--year"},
	}
	for _, tt := range tests {
		got, err := Periods(tt.years, tt.fyStart)
		if err == nil {
			t.Errorf("Periods(%v, %d) = %v, want an error naming %s", tt.years, tt.fyStart, got, tt.field)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Periods(%v, %d) error %q, want it to name %s", tt.years, tt.fyStart, err, tt.field)
		}
		if !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("Periods(%v, %d) error %v, want errors.Is ErrInvalid", tt.years, tt.fyStart, err)
		}
		if tt.field == "--fiscal-year-start" && !strings.Contains(err.Error(), "1 to 12") {
			t.Errorf("Periods(%v, %d) error %q, want it to say the month is 1 to 12", tt.years, tt.fyStart, err)
		}
	}
}

func TestBounds(t *testing.T) {
	cal, _ := Periods([]int{2024, 2025, 2026}, 1)
	fy, _ := Periods([]int{2025}, 7)
	gap, _ := Periods([]int{2026, 2024}, 1)
	for _, tt := range []struct {
		specs []PeriodSpec
		want  []string
	}{
		{cal, []string{"2024-01-01", "2025-01-01", "2026-01-01", "2027-01-01"}},
		{fy, []string{"2024-07-01", "2025-07-01"}},
		{gap, []string{"2024-01-01", "2025-01-01", "2026-01-01", "2027-01-01"}},
	} {
		var got []string
		for _, b := range Bounds(tt.specs) {
			got = append(got, ledger.FormatDate(b))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Bounds(%v) = %v, want %v", tt.specs, got, tt.want)
		}
	}
}
