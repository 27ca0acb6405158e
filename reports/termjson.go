package reports

import (
	"strconv"

	"github.com/carbonledger/carbonledger/ledger"
)

// The term report is the largest JSON the product writes (a thousand contracts with their
// years are a hundred thousand values), and encoding/json's reflection was most of the time
// it took. These append it field by field, byte for byte what json.Marshal writes for the
// same values (TestTermJSONMatchesEncodingJSON compares them on random reports), in the
// order and with the names of the struct tags, which stay the reference.

// writeJSONTo streams the term report, compact, into the indenter, a contract at a time.
func (t Term) writeJSONTo(in *indenter) {
	b := make([]byte, 0, 4096)
	b = t.Meta.appendJSONFields(b)
	b = append(b, `,"contracts":`...)
	if t.Contracts == nil {
		b = append(b, "null}\n"...)
		in.indent(b)
		return
	}
	b = append(b, '[')
	for i := range t.Contracts {
		if i > 0 {
			b = append(b, ',')
		}
		b = t.Contracts[i].appendJSON(b)
		in.indent(b)
		b = b[:0]
	}
	b = append(b, "]}\n"...)
	in.indent(b)
}

// appendJSONFields opens an object with the meta's fields.
func (m Meta) appendJSONFields(b []byte) []byte {
	b = appendKey(b, "as_of", true)
	b = jsonString(b, m.AsOf)
	if m.KnownAt != "" {
		b = appendKey(b, "known_at", false)
		b = jsonString(b, m.KnownAt)
	}
	return b
}

func (c *TermContract) appendJSON(b []byte) []byte {
	b = appendKey(b, "code", true)
	b = jsonString(b, c.Code)
	b = appendStringFields(b, []namedString{{"buyer", c.Buyer}, {"supplier", c.Supplier}, {"method", string(c.Method)},
		{"term_start", c.TermStart}, {"term_end", c.TermEnd}})
	b = appendTonnesFields(b, []namedTonnes{{"contracted", c.Contracted}, {"replacements", c.Replacements},
		{"scheduled_to_date", c.ScheduledToDate}, {"delivered", c.Delivered}, {"retired", c.Retired},
		{"cancelled", c.Cancelled}, {"reversed", c.Reversed}, {"buffer_cancelled", c.BufferCancelled},
		{"holding", c.Holding}, {"outstanding", c.Outstanding}, {"shortfall", c.Shortfall}, {"surplus", c.Surplus}})
	b = appendKey(b, "delivery_rate_percent", false)
	b = jsonOptString(b, c.DeliveryRate)
	b = appendKey(b, "weighted_average_price", false)
	b = jsonOptString(b, c.WeightedPrice)
	if c.Currency != "" {
		b = appendKey(b, "currency", false)
		b = jsonString(b, c.Currency)
	}
	b = appendKey(b, "remaining_years", false)
	b = strconv.AppendInt(b, int64(c.RemainingYears), 10)
	b = appendKey(b, "run_rate_per_remaining_year", false)
	if c.RunRate == nil {
		b = append(b, "null"...)
	} else {
		b = jsonTonnes(b, *c.RunRate)
	}
	b = appendKey(b, "status", false)
	b = jsonString(b, c.Status)
	if c.TerminatedOn != "" {
		b = appendKey(b, "terminated_on", false)
		b = jsonString(b, c.TerminatedOn)
	}
	b = appendKey(b, "years", false)
	if c.Years == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range c.Years {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.Years[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (y *TermYear) appendJSON(b []byte) []byte {
	b = appendKey(b, "year", true)
	b = strconv.AppendInt(b, int64(y.Year), 10)
	b = appendStringFields(b, []namedString{{"start", y.Start}, {"end", y.End}, {"due_on", y.DueOn}})
	b = appendKey(b, "due", false)
	b = strconv.AppendBool(b, y.Due)
	b = appendTonnesFields(b, []namedTonnes{{"scheduled", y.Scheduled}, {"delivered", y.Delivered},
		{"cumulative_delivered", y.CumulativeDelivered}, {"shortfall", y.Shortfall}, {"surplus", y.Surplus},
		{"retired", y.Retired}, {"cancelled", y.Cancelled}, {"reversed", y.Reversed}})
	b = appendKey(b, "weighted_average_price", false)
	b = jsonOptString(b, y.WeightedPrice)
	return append(b, '}')
}

// namedTonnes is a Tonnes field with its key.
type namedTonnes struct {
	key string
	t   ledger.Tonnes
}

// appendTonnesFields appends the fields, none of them first in its object.
func appendTonnesFields(b []byte, fields []namedTonnes) []byte {
	for _, f := range fields {
		b = appendKey(b, f.key, false)
		b = jsonTonnes(b, f.t)
	}
	return b
}

type namedString struct{ key, s string }

// appendStringFields appends the fields, none of them first in its object.
func appendStringFields(b []byte, fields []namedString) []byte {
	for _, f := range fields {
		b = appendKey(b, f.key, false)
		b = jsonString(b, f.s)
	}
	return b
}

// appendKey appends an object key (plain ASCII, as every tag here is) and its colon, after
// the object's opening brace when first, else after a comma.
func appendKey(b []byte, key string, first bool) []byte {
	if first {
		b = append(b, '{')
	} else {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func jsonString(b []byte, s string) []byte { return ledger.AppendJSONString(b, s, true) }

func jsonOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return jsonString(b, *s)
}

// jsonTonnes is a Tonnes as its MarshalText writes it, quoted (its digits need no escaping).
func jsonTonnes(b []byte, t ledger.Tonnes) []byte {
	b = append(b, '"')
	b = t.Append(b)
	return append(b, '"')
}
