package ledger

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SerialRange is an inclusive range of a registry's credit serial numbers within one series
// (Prefix): Verra, Gold Standard, Puro and the Climate Action Reserve number whole tonnes and
// publish ranges with both ends included, so First..Last holds Last-First+1 tonnes.
type SerialRange struct {
	Prefix string `json:"prefix"`
	First  int64  `json:"first"`
	Last   int64  `json:"last"`
	// Label is the range as the registry writes it, kept for display and reconciliation.
	Label string `json:"label,omitempty"`
}

// Count is the number of serials in the range.
func (r SerialRange) Count() int64 { return r.Last - r.First + 1 }

// Tonnes is the range's quantity in tonnes where one serial is one tonne.
func (r SerialRange) Tonnes() Tonnes { return TonnesFromKg(r.Count() * 1000) }

// TonnesIn is the range's quantity in tonnes under registry (a registry code), whose serials
// are of SerialUnitKg(registry) each.
func (r SerialRange) TonnesIn(registry string) Tonnes { return SerialTonnes(registry, r.Count()) }

// SerialUnitKg is how many kilograms one serial number stands for under registry (a registry
// code): 1 for Isometric, which issues and retires credits to the kilogram, 1000 (a tonne)
// for every other registry. The database's serial_unit_tonnes says the same (a test holds the
// two equal).
func SerialUnitKg(registry string) int64 {
	if registry == "isometric" {
		return 1
	}
	return 1000
}

// SerialTonnes is the quantity of n serials of registry.
func SerialTonnes(registry string, n int64) Tonnes { return TonnesFromKg(n * SerialUnitKg(registry)) }

// serialUnitWords says what one serial is under registry, for messages.
func serialUnitWords(registry string) string {
	if SerialUnitKg(registry) == 1 {
		return "one serial is one kilogram under " + registry
	}
	return "one serial is one tonne"
}

// String is the generic PREFIX:FIRST-LAST form, with the serial numbers whole however wide.
func (r SerialRange) String() string { return FormatSerials(r.Prefix, r.First, r.Last) }

// FormatSerials writes the range first..last of a series (a SerialRange's Prefix) in the
// generic form PREFIX:FIRST-LAST, which ParseSerials reads back to the same series and range.
func FormatSerials(prefix string, first, last int64) string {
	base, high := splitSeries(prefix)
	return base + ":" + wideNumber(high, first) + "-" + wideNumber(high, last)
}

// SeriesName is the series as the registry names it, without the high digits of wide serial
// numbers.
func SeriesName(prefix string) string {
	base, _ := splitSeries(prefix)
	return base
}

// SerialNumber writes serial number n of the series prefix in full.
func SerialNumber(prefix string, n int64) string {
	_, high := splitSeries(prefix)
	return wideNumber(high, n)
}

// Serial numbers wider than wideDigits digits (a Puro legacy serial has 30) are kept exact by
// splitting them: the digits above the last wideDigits join the series, after wideMark, and the
// last wideDigits are the number within it. Two ranges overlap only within one series, so the
// exclusion constraint on (series, range) still refuses every overlap; a range must lie within
// one such series (its two ends agree above their last wideDigits digits).
const (
	wideDigits = 15
	wideMark   = "#"
	// maxSerialWidth is the most digits a serial number may have.
	maxSerialWidth = 38
)

// splitSeries splits a series into the registry's own series and the high digits of its wide
// serial numbers ("" when they fit).
func splitSeries(prefix string) (base, high string) {
	if i := strings.LastIndex(prefix, wideMark); i >= 0 {
		return prefix[:i], prefix[i+1:]
	}
	return prefix, ""
}

// wideNumber writes the number whose high digits are high and whose last wideDigits are n.
func wideNumber(high string, n int64) string {
	if high == "" {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%s%0*d", high, wideDigits, n)
}

// splitWide reads the two ends of a range of series prefix, as digit strings of any width up
// to maxSerialWidth, into the series they belong to and their numbers within it.
func splitWide(prefix, first, last, form string) (string, int64, int64, error) {
	var highs [2]string
	var nums [2]int64
	for i, d := range []string{first, last} {
		d = strings.TrimLeft(d, "0")
		if len(d) > maxSerialWidth {
			return "", 0, 0, fmt.Errorf("has a serial number of %d digits (at most %d)%s", len(d), maxSerialWidth, form)
		}
		if len(d) > wideDigits {
			highs[i], d = d[:len(d)-wideDigits], d[len(d)-wideDigits:]
		}
		if d == "" {
			d = "0"
		}
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return "", 0, 0, fmt.Errorf("has a serial number %q that is not a number%s", d, form)
		}
		nums[i] = n
	}
	if highs[0] != highs[1] {
		if len(highs[0]) < len(highs[1]) || (len(highs[0]) == len(highs[1]) && highs[0] < highs[1]) {
			return "", 0, 0, fmt.Errorf("spans more than one block of 10^%d serials (serial numbers wider than %d digits are kept exact by the block they lie in): record it as one range per block, the first ending at %s", wideDigits, wideDigits, wideNumber(highs[0], 999_999_999_999_999))
		}
		return "", 0, 0, errors.New("ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included")
	}
	if highs[0] != "" {
		prefix += wideMark + highs[0]
	}
	return prefix, nums[0], nums[1], nil
}

// Piece returns the part first..last of r's series, labelled as the registry writes it: r's
// own label when the piece is the whole of r, else r's registry form rebuilt for the piece when
// that form names its ends alone (Climate Action Reserve "SERIES-FIRST to LAST", Gold Standard
// "SERIES-FIRST-LAST", Puro "SERIES_FIRST-LAST", carried-over "SERIAL - SERIAL"), else the
// generic PREFIX:FIRST-LAST. A Verra label is not rebuilt: its leading block number is the
// registry's to give. A rebuilt label is kept only when it parses back to exactly the piece.
func (r SerialRange) Piece(first, last int64) SerialRange {
	p := SerialRange{Prefix: r.Prefix, First: first, Last: last}
	if first == r.First && last == r.Last && r.Label != "" {
		p.Label = r.Label
		return p
	}
	p.Label = p.String()
	base, high := splitSeries(r.Prefix)
	f, t := wideNumber(high, first), wideNumber(high, last)
	var l string
	switch {
	case genericSerialRE.MatchString(r.Label):
	case carSerialRE.MatchString(r.Label) && !gsLooksRE.MatchString(r.Label):
		l = fmt.Sprintf("%s-%s to %s", base, f, t)
	case verraSerialRE.MatchString(r.Label):
	case gsSerialRE.MatchString(r.Label), acrSerialRE.MatchString(r.Label):
		l = fmt.Sprintf("%s-%s-%s", base, f, t)
	case puroSerialRE.MatchString(r.Label):
		l = fmt.Sprintf("%s_%s-%s", base, f, t)
	case puroLegacyRE.MatchString(r.Label):
		l = f + " - " + t
		if !strings.Contains(r.Label, " - ") && strings.Contains(r.Label, "-") {
			l = f + "-" + t
		}
	case kyotoRangeRE.MatchString(r.Label):
		if g := strings.Split(base, "-"); len(g) == 6 {
			serial := func(n string) string {
				return fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", g[0], g[1], n, g[2], g[3], g[4], g[5])
			}
			l = serial(f) + " - " + serial(t)
		}
	}
	if l != "" {
		if q, err := ParseSerials(l); err == nil && q.Prefix == p.Prefix && q.First == first && q.Last == last {
			p.Label = l
		}
	}
	return p
}

// Contains reports whether o lies wholly inside r.
func (r SerialRange) Contains(o SerialRange) bool {
	return r.Prefix == o.Prefix && o.First >= r.First && o.Last <= r.Last
}

var (
	// The generic form; its prefix may hold a '+' so that a Puro series ("..._CORC100+_...")
	// written in the generic form reads back.
	genericSerialRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._/+-]{0,199}):([0-9]{1,40})-([0-9]{1,40})$`)
	// Climate Action Reserve: "CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000"; the American
	// Carbon Registry and ART write "SERIES-FIRST to LAST" the same way, so any series that
	// starts with a registry's capital letters and a '-' is read in this form.
	carSerialRE = regexp.MustCompile(`^([A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*?)-([0-9]{1,40}) to ([0-9]{1,40})$`)
	// The American Carbon Registry's (and ART's) dashed form "ACR-US-192-2010-203-1-5000": the
	// series, then the first and the last serial.
	acrSerialRE = regexp.MustCompile(`^((?:ACR|ART)-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*?)-([0-9]{1,40})-([0-9]{1,40})$`)
	// Verra: "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
	verraSerialRE = regexp.MustCompile(`^([0-9]{1,12})-([0-9]{1,15})-([0-9]{1,15})-((?:VCS|CCB)-[A-Za-z0-9-]+)$`)
	// Gold Standard: "GS1-1-KE-GS11603-16-2025-30256-110-5463", the series (registry, unit
	// type, country, project, project type, vintage, issuance batch) then the first and last
	// serial. gsLooksRE tells an attempt at this form, to refuse it in its own words.
	gsSerialRE = regexp.MustCompile(`^(GS[0-9]{1,6}-[0-9]{1,6}-[A-Z]{2}-GS[0-9]{1,12}-[0-9]{1,6}-[0-9]{4}-[0-9]{1,15})-([0-9]+)-([0-9]+)$`)
	gsLooksRE  = regexp.MustCompile(`^(?i)GS[0-9]+-`)
	// Puro.earth's certificates: "PURO_PR_<type>_<country>_<facility>_<vintage>_<issuance
	// uuid>_<first>-<last>", the series everything before the final "_FIRST-LAST" (parts of
	// letters, digits, '-' and '+', such as CORC100+, joined by single '_'), then the first and
	// last serial of a range unique only within its issuance. puroLooksRE tells an attempt at
	// this form, and puroLegacyRE Puro's legacy 30-digit serials (an 18-digit GSRN and a
	// 12-digit sequence), to refuse them in their own words.
	puroSerialRE = regexp.MustCompile(`^(PURO_[A-Za-z0-9+-]+(?:_[A-Za-z0-9+-]+)*)_([0-9]+)-([0-9]+)$`)
	puroLooksRE  = regexp.MustCompile(`^(?i)PURO_`)
	puroLegacyRE = regexp.MustCompile(`^([0-9]{30})(?:\s*-\s*([0-9]{30}))?$`)
	// A Kyoto-style unit serial, as Gold Standard writes credits carried over from another
	// registry: "RW-5-1463953-2-2-0-7014" is party RW, unit type 5, serial 1463953, then the
	// original and applicable commitment periods, the LULUCF activity and the project.
	kyotoSerialRE = regexp.MustCompile(`^([A-Z]{2})-([0-9]{1,3})-([0-9]+)-([0-9]{1,3})-([0-9]{1,3})-([0-9]{1,3})-([0-9]{1,12})$`)
	// Two such serials, "FIRST - LAST".
	kyotoRangeRE = regexp.MustCompile(`^(\S+)\s+-\s+(\S+)$`)
)

// goldStandardForm, puroForm, puroLegacy and carriedOverForm show the registry forms in messages.
// puroLegacySeries is the series of Puro's legacy 30-digit serials, which carry no series of
// their own (their GSRN, the first 18 digits, names the production facility).
const puroLegacySeries = "PURO"

const (
	goldStandardForm = "Gold Standard's form SERIES-FIRST-LAST, such as GS1-1-KE-GS11603-16-2025-30256-110-5463 (the series GS1-1-KE-GS11603-16-2025-30256, then the first and the last serial, both included)"
	puroForm         = "Puro's form SERIES_FIRST-LAST, such as PURO_PR_BIOCHAR_FI_FACILITY-1_2024_<issuance uuid>_1-100 (the series is everything before the final _FIRST-LAST, then the first and the last serial, both included)"
	puroLegacy       = "Puro's legacy form of 30-digit serials (an 18-digit GSRN and a 12-digit sequence), FIRST - LAST or one serial"
	carriedOverForm  = "Gold Standard's form for carried-over credits, two whole serials FIRST - LAST such as RW-5-1459975-2-2-0-7014 - RW-5-1460107-2-2-0-7014 (the third field is the serial; every other field is the series and must agree)"
)

// ParseSerials parses a serial range in the generic form PREFIX:FIRST-LAST or in a registry's
// own form (Climate Action Reserve "PREFIX-FIRST to LAST", Verra
// "BLOCK-FIRST-LAST-VCS-...", Gold Standard "GS1-...-BATCH-FIRST-LAST", Puro
// "PURO_PR_..._UUID_FIRST-LAST", and Gold Standard's carried-over Kyoto units
// "RW-5-FIRST-2-2-0-7014 - RW-5-LAST-2-2-0-7014"). The range must not
// be empty or reversed. Label keeps the text exactly as written (less surrounding space).
//
// A carried-over range's series is its serials less the serial field ("RW-5-2-2-0-7014"): the
// two serials must agree in every other field. Puro's legacy serials of 30 digits, one or
// "FIRST - LAST", are of the series PURO. Numbers of up to 38 digits are kept exact (see
// wideDigits).
func ParseSerials(s string) (SerialRange, error) {
	const field = "serials"
	s = strings.TrimSpace(s)
	if s == "" {
		return SerialRange{}, Invalid(field, "", "is empty; write PREFIX:FIRST-LAST")
	}
	if len(s) > 300 {
		return SerialRange{}, Invalid(field, s, "is too long (at most 300 characters)")
	}
	var r SerialRange
	var first, last, form string
	if m := genericSerialRE.FindStringSubmatch(s); m != nil {
		r.Prefix, first, last = m[1], m[2], m[3]
	} else if m := carSerialRE.FindStringSubmatch(s); m != nil && !gsLooksRE.MatchString(s) {
		r.Prefix, first, last = m[1], m[2], m[3]
	} else if m := verraSerialRE.FindStringSubmatch(s); m != nil {
		// Verra numbers are unique across its registry; the series is the project-vintage
		// suffix, and the leading block number is kept only in the label.
		r.Prefix, first, last = m[4], m[2], m[3]
	} else if m := gsSerialRE.FindStringSubmatch(s); m != nil {
		r.Prefix, first, last, form = m[1], m[2], m[3], " in "+goldStandardForm
	} else if gsLooksRE.MatchString(s) {
		return SerialRange{}, Invalid(field, s, "is not a serial range in "+goldStandardForm)
	} else if m := acrSerialRE.FindStringSubmatch(s); m != nil {
		r.Prefix, first, last = m[1], m[2], m[3]
	} else if m := puroSerialRE.FindStringSubmatch(s); m != nil {
		r.Prefix, first, last, form = m[1], m[2], m[3], " in "+puroForm
		if len(r.Prefix) > 200 {
			return SerialRange{}, Invalid(field, s, "has a series of more than 200 characters"+form)
		}
	} else if puroLooksRE.MatchString(s) {
		return SerialRange{}, Invalid(field, s, "is not a serial range in "+puroForm)
	} else if m := puroLegacyRE.FindStringSubmatch(s); m != nil {
		r.Prefix, first, last, form = puroLegacySeries, m[1], m[2], " in "+puroLegacy
		if last == "" {
			last = first
		}
	} else if m := kyotoRangeRE.FindStringSubmatch(s); m != nil && (kyotoSerialRE.MatchString(m[1]) || kyotoSerialRE.MatchString(m[2])) {
		var err error
		if r.Prefix, first, last, err = parseCarriedOver(m[1], m[2]); err != nil {
			return SerialRange{}, Invalid(field, s, err.Error())
		}
		form = " in " + carriedOverForm
	} else {
		return SerialRange{}, Invalid(field, s, "is not a serial range: write PREFIX:FIRST-LAST (such as CAR-1-MX-1234-22-101-2024:1-5000), or the registry's own form")
	}
	if len(r.Prefix) > 200 { // the generic form, which entries keep, takes a series of at most 200
		return SerialRange{}, Invalid(field, s, "has a series of more than 200 characters")
	}
	var err error
	if r.Prefix, r.First, r.Last, err = splitWide(r.Prefix, first, last, form); err != nil {
		return SerialRange{}, Invalid(field, s, err.Error())
	}
	if r.First < 0 || r.Last < r.First {
		return SerialRange{}, Invalid(field, s, "ends before it starts; the range is FIRST-LAST with FIRST <= LAST, both included")
	}
	r.Label = s
	return r, nil
}

// parseCarriedOver reads the two ends of a carried-over range: each a whole Kyoto-style serial,
// agreeing in every field but the serial (the third). It returns the series (the serial less
// its serial field) and the first and last serial numbers, or the rule broken.
func parseCarriedOver(a, b string) (prefix, first, last string, err error) {
	ma, mb := kyotoSerialRE.FindStringSubmatch(a), kyotoSerialRE.FindStringSubmatch(b)
	switch {
	case ma == nil:
		return "", "", "", fmt.Errorf("has a first serial %q that is not a whole serial, in %s", a, carriedOverForm)
	case mb == nil:
		return "", "", "", fmt.Errorf("has a last serial %q that is not a whole serial, in %s", b, carriedOverForm)
	}
	series := func(m []string) string { return strings.Join([]string{m[1], m[2], m[4], m[5], m[6], m[7]}, "-") }
	if series(ma) != series(mb) {
		return "", "", "", fmt.Errorf("joins serials of two series (%s and %s, the serial field left out): write %s", series(ma), series(mb), carriedOverForm)
	}
	return series(ma), ma[3], mb[3], nil
}

// RequireCount checks that a serial range holds exactly the given tonnes, one serial a tonne
// or, for a registry counting kilograms (Isometric), a kilogram: it is the check made before
// the contract, and so its registry, is known.
func (r SerialRange) RequireCount(t Tonnes) error {
	if !r.Tonnes().Equal(t) && !r.TonnesIn("isometric").Equal(t) {
		return Invalid("serials", r.Label, fmt.Sprintf("holds %d serials (both ends included) but the tonnes are %s; one serial is one tonne (one kilogram under Isometric)", r.Count(), t))
	}
	return nil
}

// RequireCountIn checks that a serial range holds exactly the given tonnes under registry.
func (r SerialRange) RequireCountIn(registry string, t Tonnes) error {
	if !r.TonnesIn(registry).Equal(t) {
		return Invalid("serials", r.Label, fmt.Sprintf("holds %d serials (both ends included) but the tonnes are %s; %s", r.Count(), t, serialUnitWords(registry)))
	}
	return nil
}

// SerialState is where a block of delivered serials stands. A block moves from delivered to
// retired or reversed; a retired block never moves again.
type SerialState string

const (
	SerialDelivered SerialState = "delivered"
	SerialRetired   SerialState = "retired"
	SerialReversed  SerialState = "reversed"
)

// SerialBlock is a block of serials the ledger holds: an inclusive range of one series, the
// contract it was delivered under, its state, and the entry that put it there (its date and
// vintage).
type SerialBlock struct {
	First, Last int64
	Contract    string
	State       SerialState
	Entry       string
	Date        time.Time
	Vintage     int
}

// CheckSerialsFree refuses delivering r when any block ever delivered overlaps it (blocks are
// the blocks of r's series that overlap r): a serial is delivered once.
func CheckSerialsFree(blocks []SerialBlock, r SerialRange) error {
	if len(blocks) == 0 {
		return nil
	}
	b := blocks[0]
	return &FieldError{Field: "serials", Value: r.Label, Kind: ErrConflict, Rule: fmt.Sprintf(
		"overlap serials %s already delivered under contract %s (now %s, entry %s); a serial is delivered once",
		FormatSerials(r.Prefix, b.First, b.Last), b.Contract, b.State, b.Entry)}
}

// FindSerialBlock returns the block that holds all of r under contract in state, among
// blocks (the blocks of r's series that overlap r), or an error saying why r cannot move from
// there: never delivered (ErrInvalid), or held by another contract, already retired, in
// another state or only partly held (ErrConflict).
func FindSerialBlock(blocks []SerialBlock, contract string, r SerialRange, state SerialState) (SerialBlock, error) {
	for _, b := range blocks {
		if b.Contract == contract && b.State == state && b.First <= r.First && b.Last >= r.Last {
			return b, nil
		}
	}
	why := "were never delivered under contract " + contract
	for _, b := range blocks {
		switch {
		case b.Contract != contract:
			why = "belong (in part) to contract " + b.Contract
		case b.State == SerialRetired:
			why = fmt.Sprintf("are (in part) already retired (serials %s-%s, entry %s); a retired serial is never retired again", SerialNumber(r.Prefix, b.First), SerialNumber(r.Prefix, b.Last), b.Entry)
		case b.State != state:
			why = fmt.Sprintf("are (in part) %s (serials %s-%s)", b.State, SerialNumber(r.Prefix, b.First), SerialNumber(r.Prefix, b.Last))
		default:
			why = "are only partly held as " + string(state) + " under contract " + contract
		}
		if b.State == SerialRetired {
			break
		}
	}
	kind := ErrInvalid
	if len(blocks) > 0 {
		kind = ErrConflict
	}
	return SerialBlock{}, &FieldError{Field: "serials", Value: r.Label, Kind: kind, Rule: why}
}

// Rest returns the parts of b that stay where they are when r (inside b) moves out of it:
// none, one or two inclusive ranges.
func (b SerialBlock) Rest(r SerialRange) [][2]int64 {
	var out [][2]int64
	for _, part := range [][2]int64{{b.First, r.First - 1}, {r.Last + 1, b.Last}} {
		if part[0] <= part[1] {
			out = append(out, part)
		}
	}
	return out
}

// CheckRetireAfterDelivery refuses retiring serials on a date before the block holding them
// was delivered.
func CheckRetireAfterDelivery(b SerialBlock, r SerialRange, date time.Time) error {
	if b.Date.After(date) {
		return Invalid("date", FormatDate(date), "is before serials "+r.Label+" were delivered ("+FormatDate(b.Date)+"); a retirement cannot come before its delivery")
	}
	return nil
}
