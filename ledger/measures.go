package ledger

import (
	"slices"
	"strings"
)

// A Measure is one of the figures a position, a report and a rollup carry (contracted,
// delivered, retired, ...), with the postings that count in it: those to an account of one of
// its account kinds, under an entry of one of its kinds (for a correction, the kind it
// corrects); any kind when it lists none.
//
// Measures is the one definition of that mapping. The reports' SQL is generated from it
// (MeasureSQL); Position.Add and the database's posting_measures are hand-written for speed
// and tested equal to it for every account kind and entry kind.
type Measure struct {
	Name     string // the column and JSON name
	Accounts []AccountKind
	Kinds    []Kind
}

// Measures in the order of the rollups' columns.
var Measures = []Measure{
	{"contracted", []AccountKind{AccOpen}, []Kind{KindSign, KindAmend}},
	{"replacements", []AccountKind{AccOpen}, []Kind{KindReverse}},
	{"open", []AccountKind{AccOpen}, nil},
	{"delivered", []AccountKind{AccHolding, AccRetired}, []Kind{KindDeliver}},
	{"holding", []AccountKind{AccHolding}, nil},
	{"retired", []AccountKind{AccRetired}, nil},
	{"cancelled", []AccountKind{AccCancelled}, nil},
	{"reversed", []AccountKind{AccReversed}, nil},
	{"buffer_cancelled", []AccountKind{AccBufferCancelled}, nil},
	// delivered into the holding (the inventory's age is read from it)
	{"holding_in", []AccountKind{AccHolding}, []Kind{KindDeliver}},
}

// holdingIn is the measure the audit adds beside a position's.
var holdingIn = measureNamed("holding_in")

func measureNamed(name string) Measure {
	for _, m := range Measures {
		if m.Name == name {
			return m
		}
	}
	panic("no measure " + name)
}

// Counts reports whether a posting to an account of kind ak, under an entry of effective kind
// k, counts in m.
func (m Measure) Counts(ak AccountKind, k Kind) bool {
	return slices.Contains(m.Accounts, ak) && (m.Kinds == nil || slices.Contains(m.Kinds, k))
}

// MeasureSQL is the SQL condition under which a posting counts in m, for the SQL expressions
// ak (its account kind) and k (its effective entry kind).
func (m Measure) MeasureSQL(ak, k string) string {
	cond := ak + " IN (" + quoteList(m.Accounts) + ")"
	if m.Kinds != nil {
		cond += " AND " + k + " IN (" + quoteList(m.Kinds) + ")"
	}
	return cond
}

func quoteList[S ~string](xs []S) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + string(x) + "'" // kinds are fixed identifiers, never user input
	}
	return strings.Join(q, ", ")
}
