package ledger

import (
	"time"

	"github.com/shopspring/decimal"
)

// FlowSum is a position accumulated from rollup rows, with the priced part of the deliveries
// (tonnes whose price is known, and their value) for weighted average prices.
type FlowSum struct {
	Position
	Priced Tonnes
	Value  decimal.Decimal
}

// AddFlow counts one rollup row.
func (f *FlowSum) AddFlow(ak AccountKind, k Kind, amount, priced Tonnes, value decimal.Decimal) {
	f.Position.Add(ak, k, amount)
	f.Priced = f.Priced.Add(priced)
	f.Value = f.Value.Add(value)
}

// Merge adds another sum into f.
func (f *FlowSum) Merge(g FlowSum) {
	p := &f.Position
	q := g.Position
	p.Contracted, p.Replacements, p.Open = p.Contracted.Add(q.Contracted), p.Replacements.Add(q.Replacements), p.Open.Add(q.Open)
	p.Delivered, p.Holding, p.Retired = p.Delivered.Add(q.Delivered), p.Holding.Add(q.Holding), p.Retired.Add(q.Retired)
	p.Cancelled, p.Reversed, p.BufferCancelled = p.Cancelled.Add(q.Cancelled), p.Reversed.Add(q.Reversed), p.BufferCancelled.Add(q.BufferCancelled)
	f.Priced = f.Priced.Add(g.Priced)
	f.Value = f.Value.Add(g.Value)
}

// ContractFlows is what the reports need of one contract: its terms, the schedule in force
// and termination as of the report's date, and its flows in total, per contract year and
// (deliveries into the holding, for the inventory's age) per month.
type ContractFlows struct {
	Contract     Contract
	Schedule     []ScheduleLine
	TerminatedOn time.Time
	Total        FlowSum
	Years        map[int]*FlowSum
	// HoldingIn is, per month, the tonnes delivered into the holding (net of corrections).
	HoldingIn []MonthAmount
}

// MonthAmount is an amount in one month.
type MonthAmount struct {
	Month  time.Time
	Amount Tonnes
}

// GroupFlows is the flows of one group key in one month, for period reports.
type GroupFlows struct {
	Month time.Time
	Key   string
	Sum   FlowSum
}
