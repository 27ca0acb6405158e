package ledger

import "strings"

// iso3166 holds the ISO 3166-1 alpha-2 country codes (officially assigned).
const iso3166 = `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ
FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE
RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW`

var countries = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(iso3166) {
		m[c] = true
	}
	return m
}()

// ValidCountry reports whether c is an ISO 3166-1 alpha-2 code (upper case).
func ValidCountry(c string) bool { return countries[c] }

// currencyScale is the number of minor-unit digits of the ISO 4217 currencies a contract may
// be priced in. Prices and amounts are exact at this scale.
var currencyScale = map[string]int32{
	"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "JPY": 0, "CNY": 2, "INR": 2,
	"MXN": 2, "BRL": 2, "COP": 2, "CLP": 0, "PEN": 2, "ARS": 2, "SEK": 2, "NOK": 2, "DKK": 2, "ISK": 0,
	"PLN": 2, "CZK": 2, "HUF": 2, "SGD": 2, "HKD": 2, "KRW": 0, "TWD": 2, "ZAR": 2, "KES": 2, "NGN": 2,
	"IDR": 2, "MYR": 2, "THB": 2, "PHP": 2, "VND": 0, "AED": 2, "SAR": 2, "ILS": 2, "TRY": 2, "BHD": 3,
	"KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// CurrencyScale returns the minor-unit digits of an ISO 4217 currency, and whether it is known.
func CurrencyScale(code string) (int32, bool) {
	s, ok := currencyScale[code]
	return s, ok
}

// Registry codes and the names and aliases users write for them.
var registries = []struct {
	Code, Name string
	Aliases    []string
}{
	{"car", "Climate Action Reserve", []string{"climate action reserve", "car", "reserve", "crt"}},
	{"verra", "Verra", []string{"verra", "vcs", "verified carbon standard", "vcu"}},
	{"gold-standard", "Gold Standard", []string{"gold standard", "gold-standard", "gs", "gsf"}},
	{"puro", "Puro.earth", []string{"puro.earth", "puro", "puro earth"}},
	{"isometric", "Isometric", []string{"isometric"}},
	{"acr", "American Carbon Registry", []string{"american carbon registry", "acr"}},
	{"cercarbono", "Cercarbono", []string{"cercarbono"}},
	{"riverse", "Riverse", []string{"riverse"}},
	{"other", "Other registry", []string{"other"}},
}

// NormalizeRegistry maps a registry's name or alias to its code ("" stays "": not public).
func NormalizeRegistry(s string) (string, bool) {
	k := strings.ToLower(strings.TrimSpace(s))
	if k == "" {
		return "", true
	}
	for _, r := range registries {
		if k == r.Code {
			return r.Code, true
		}
		for _, a := range r.Aliases {
			if k == a {
				return r.Code, true
			}
		}
	}
	return "", false
}

// RegistryName returns the display name of a registry code.
func RegistryName(code string) string {
	for _, r := range registries {
		if r.Code == code {
			return r.Name
		}
	}
	if code == "" {
		return "not public"
	}
	return code
}

// RegistryCodes lists the registry codes.
func RegistryCodes() []string {
	out := make([]string, len(registries))
	for i, r := range registries {
		out[i] = r.Code
	}
	return out
}

// Method is a carbon removal method.
type Method string

const (
	MethodBiochar            Method = "biochar"
	MethodForestry           Method = "forestry"
	MethodDACCS              Method = "daccs"
	MethodBECCS              Method = "beccs"
	MethodEnhancedWeathering Method = "enhanced_weathering"
	MethodOcean              Method = "ocean"
	MethodOther              Method = "other"
)

// Methods lists the methods.
var Methods = []Method{MethodBiochar, MethodForestry, MethodDACCS, MethodBECCS, MethodEnhancedWeathering, MethodOcean, MethodOther}

var methodAliases = map[string]Method{
	"biochar": MethodBiochar, "biochar carbon removal": MethodBiochar, "bcr": MethodBiochar,
	"forestry": MethodForestry, "forest restoration": MethodForestry, "forest ecosystem restoration": MethodForestry,
	"reforestation": MethodForestry, "afforestation": MethodForestry, "arr": MethodForestry, "ifm": MethodForestry,
	"improved forest management": MethodForestry, "nature-based": MethodForestry,
	"daccs": MethodDACCS, "dac": MethodDACCS, "direct air capture": MethodDACCS,
	"beccs": MethodBECCS, "bioenergy with carbon capture and storage": MethodBECCS,
	"enhanced_weathering": MethodEnhancedWeathering, "enhanced weathering": MethodEnhancedWeathering,
	"enhanced rock weathering": MethodEnhancedWeathering, "erw": MethodEnhancedWeathering,
	"ocean": MethodOcean, "ocean alkalinity enhancement": MethodOcean, "marine": MethodOcean, "mcdr": MethodOcean,
	"other": MethodOther,
}

// ParseMethod maps a method's name or alias (case-insensitive) to the method.
func ParseMethod(s string) (Method, error) {
	if m, ok := methodAliases[strings.ToLower(strings.TrimSpace(s))]; ok {
		return m, nil
	}
	return "", Invalid("method", s, "is not a method (biochar, forestry, daccs, beccs, enhanced_weathering, ocean, other)")
}

// Slug turns a party's name into an account-code component: lower-case ASCII letters and
// digits, other runs of characters as one '-'. "The Next 150" -> "the-next-150".
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if b.Len() > 0 && !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if len(out) > 60 {
		out = strings.TrimSuffix(out[:60], "-")
	}
	if out == "" {
		out = "party"
	}
	return out
}
