package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

func cmdContract(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("contract needs a subcommand: add, list or show")
	}
	if isHelp(args[0]) {
		return a.subcommandHelp("contract add|list|show [flags]", "contract SUBCOMMAND -h")
	}
	switch args[0] {
	case "add":
		return contractAdd(ctx, a, args[1:])
	case "list":
		return contractList(ctx, a, args[1:])
	case "show":
		return contractShow(ctx, a, args[1:])
	}
	return usagef("contract: unknown subcommand %q (add, list, show)", args[0])
}

func contractAdd(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("contract add", "contract add -f FILE.json | --code C --buyer B ... [--key K]")
	file := fs.String("f", "", "contract JSON file ('-' for stdin)")
	key := fs.String("key", "", "idempotency key (default: contract:<code>:sign)")
	format := formatFlag(fs, "table", "table", "json")
	fields := map[string]*string{}
	for _, f := range []struct{ name, json, help string }{
		{"code", "code", "contract code (unique, your choice)"},
		{"buyer", "buyer", "buyer"}, {"supplier", "supplier", "supplier"}, {"project", "project", "project"},
		{"method", "method", "biochar|forestry|daccs|beccs|enhanced_weathering|ocean|other"},
		{"country", "country", "ISO 3166-1 alpha-2 country code"}, {"region", "region", "region within the country"},
		{"registry", "registry", "registry (car, verra, gold-standard, puro, isometric, ...)"}, {"standard", "standard", "standard or protocol"},
		{"durability", "durability_years", "durability in years, or a class such as 100+"},
		{"term-start", "term_start", "term start YYYY-MM-DD"}, {"term-end", "term_end", "term end YYYY-MM-DD"},
		{"signed-on", "signed_on", "signing date YYYY-MM-DD"}, {"tonnes", "tonnes", "contracted tonnes"},
		{"price", "price_per_tonne", "price per tonne"}, {"currency", "currency", "ISO 4217 currency"},
		{"delivery-mode", "delivery_mode", "transfer|retire_on_delivery"},
		{"over-delivery-tolerance", "over_delivery_tolerance", "tonnes that may be delivered beyond the contract"},
		{"notes", "notes", "notes"},
	} {
		fields[f.json] = fs.String(f.name, "", f.help)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("contract add takes no arguments (got %q); use -f FILE.json or flags", pos[0])
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	var src io.Reader
	switch {
	case *file != "":
		for k, v := range fields {
			if *v != "" {
				return usagef("give the contract either as -f FILE.json or as flags, not both (--%s)", strings.ReplaceAll(k, "_", "-"))
			}
		}
		if *file == "-" {
			src = os.Stdin
		} else {
			f, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer f.Close()
			src = f
		}
	default:
		m := map[string]any{}
		for k, v := range fields {
			if *v != "" {
				m[k] = *v
			}
		}
		if len(m) == 0 {
			return usagef("contract add needs -f FILE.json or the contract's fields as flags (see -h)")
		}
		b, _ := json.Marshal(m)
		src = bytes.NewReader(b)
	}
	c, err := ledger.ParseContractJSON(src)
	if err != nil {
		return err
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.AddContract(ctx, c, *key)
	if err != nil {
		return err
	}
	st, err := s.Contract(ctx, c.Code)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSON(a.stdout, contractView(st))
	}
	verb := "signed"
	if res.Replay {
		verb = "already recorded (same terms, nothing changed)"
	}
	fmt.Fprintf(a.stdout, "contract %s %s: %s t, %s -> %s, entry %s\n", c.Code, verb, st.Position.Contracted, c.Supplier, c.Buyer, res.Entry.ID)
	return nil
}

func contractList(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("contract list", "contract list [--format table|json|csv]")
	format := formatFlag(fs, "table", "table", "json", "csv")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("contract list takes no arguments")
	}
	if err := checkFormat(*format, "table", "json", "csv"); err != nil {
		return err
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	all, err := s.Contracts(ctx)
	if err != nil {
		return err
	}
	views := make([]contractJSON, len(all))
	for i, st := range all {
		views[i] = contractView(st)
	}
	switch *format {
	case "json":
		return writeJSON(a.stdout, map[string]any{"contracts": views})
	case "csv":
		return writeContractsCSV(a.stdout, views)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CODE\tBUYER\tSUPPLIER\tMETHOD\tTERM\tCONTRACTED\tDELIVERED\tRETIRED\tOPEN\tSTATUS\t")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\t%s\t%s\t%s\t%s\t%s\t\n", v.Code, v.Buyer, v.Supplier, v.Method, v.TermStart, v.TermEnd,
			v.Contracted, v.Delivered, v.Retired, v.Open, v.Status)
	}
	if len(views) == 0 {
		fmt.Fprintln(a.stderr, "no contracts yet; add one with `carbonledger contract add -f FILE.json`")
	}
	return tw.Flush()
}

func contractShow(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("contract show", "contract show CODE [--format table|json|csv]")
	format := formatFlag(fs, "table", "table", "json", "csv")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("contract show needs exactly one contract code")
	}
	if err := checkFormat(*format, "table", "json", "csv"); err != nil {
		return err
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Contract(ctx, pos[0])
	if err != nil {
		return err
	}
	v := contractView(st)
	switch *format {
	case "json":
		return writeJSON(a.stdout, v)
	case "csv":
		return writeContractsCSV(a.stdout, []contractJSON{v})
	}
	return writePosition(a.stdout, st, v)
}

// contractJSON is the stable JSON of `contract show` and `contract list`.
type contractJSON struct {
	Code                  string              `json:"code"`
	Buyer                 string              `json:"buyer"`
	Supplier              string              `json:"supplier"`
	Project               string              `json:"project"`
	Method                ledger.Method       `json:"method"`
	Country               string              `json:"country"`
	Region                string              `json:"region"`
	Registry              string              `json:"registry"`
	Standard              string              `json:"standard"`
	DurabilityYears       ledger.Durability   `json:"durability_years"`
	TermStart             string              `json:"term_start"`
	TermEnd               string              `json:"term_end"`
	SignedOn              string              `json:"signed_on"`
	Tonnes                ledger.Tonnes       `json:"tonnes"` // as signed
	PricePerTonne         *string             `json:"price_per_tonne"`
	Currency              string              `json:"currency"`
	DeliveryMode          ledger.DeliveryMode `json:"delivery_mode"`
	OverDeliveryTolerance ledger.Tonnes       `json:"over_delivery_tolerance"`
	Notes                 string              `json:"notes,omitempty"`
	Schedule              []scheduleJSON      `json:"schedule"`
	ScheduleVersion       int                 `json:"schedule_version"`
	Status                string              `json:"status"`
	TerminatedOn          string              `json:"terminated_on,omitempty"`
	Contracted            ledger.Tonnes       `json:"contracted"`
	Replacements          ledger.Tonnes       `json:"replacements"`
	Open                  ledger.Tonnes       `json:"open"`
	Delivered             ledger.Tonnes       `json:"delivered"`
	Holding               ledger.Tonnes       `json:"holding"`
	Retired               ledger.Tonnes       `json:"retired"`
	Cancelled             ledger.Tonnes       `json:"cancelled"`
	Reversed              ledger.Tonnes       `json:"reversed"`
	BufferCancelled       ledger.Tonnes       `json:"buffer_cancelled"`
	SerializedHolding     ledger.Tonnes       `json:"serialized_holding"`
	Entries               int64               `json:"entries"`
	Accounts              map[string]string   `json:"accounts"`
}

type scheduleJSON struct {
	Year          int           `json:"year"`
	Start         string        `json:"start"`
	End           string        `json:"end"`
	Tonnes        ledger.Tonnes `json:"tonnes"`
	Vintage       int           `json:"vintage,omitempty"`
	PricePerTonne *string       `json:"price_per_tonne,omitempty"`
	DueOn         string        `json:"due_on,omitempty"`
}

func contractView(st ledger.ContractState) contractJSON {
	c, p := st.Contract, st.Position
	v := contractJSON{Code: c.Code, Buyer: c.Buyer, Supplier: c.Supplier, Project: c.Project, Method: c.Method,
		Country: c.Country, Region: c.Region, Registry: c.Registry, Standard: c.Standard, DurabilityYears: c.Durability,
		TermStart: ledger.FormatDate(c.TermStart), TermEnd: ledger.FormatDate(c.TermEnd), SignedOn: ledger.FormatDate(c.SignedOn),
		Tonnes: c.Tonnes, Currency: c.Currency, DeliveryMode: c.DeliveryMode, OverDeliveryTolerance: c.OverDeliveryTolerance,
		Notes: c.Notes, ScheduleVersion: st.ScheduleVersion, Status: st.Status(), TerminatedOn: ledger.FormatDate(p.TerminatedOn),
		Contracted: p.Contracted, Replacements: p.Replacements, Open: p.Open, Delivered: p.Delivered, Holding: p.Holding,
		Retired: p.Retired, Cancelled: p.Cancelled, Reversed: p.Reversed, BufferCancelled: p.BufferCancelled,
		SerializedHolding: p.SerializedHolding, Entries: st.Entries}
	if c.PricePerTonne != nil {
		s := c.PricePerTonne.StringFixed(scaleOf(c.Currency))
		v.PricePerTonne = &s
	}
	years := c.Years()
	for _, y := range years {
		l := scheduleJSON{Year: y.N, Start: ledger.FormatDate(y.Start), End: ledger.FormatDate(y.End), Tonnes: ledger.ScheduledFor(st.Schedule, y.N)}
		for _, sl := range st.Schedule {
			if sl.Year == y.N {
				l.Vintage, l.DueOn = sl.Vintage, ledger.FormatDate(sl.DueOn)
				if sl.PricePerTonne != nil {
					s := sl.PricePerTonne.StringFixed(scaleOf(c.Currency))
					l.PricePerTonne = &s
				}
			}
		}
		v.Schedule = append(v.Schedule, l)
	}
	acc := c.Accounts()
	v.Accounts = map[string]string{"supply": acc.Supply, "open": acc.Open, "cancelled": acc.Cancelled, "holding": acc.Holding,
		"retired": acc.Retired, "reversed": acc.Reversed, "buffer": acc.Buffer, "buffer_cancelled": acc.BufferCancelled}
	return v
}

func scaleOf(currency string) int32 {
	s, ok := ledger.CurrencyScale(currency)
	if !ok {
		return 2
	}
	return s
}

func writeContractsCSV(w io.Writer, vs []contractJSON) error {
	c := reports.NewCSV(w)
	c.Header("code", "buyer", "supplier", "project", "method", "country", "region", "registry", "term_start", "term_end",
		"status", "contracted", "replacements", "open", "delivered", "holding", "retired", "cancelled", "reversed", "buffer_cancelled")
	for _, v := range vs {
		c.Row(reports.Text(v.Code), reports.Text(v.Buyer), reports.Text(v.Supplier), reports.Text(v.Project), reports.Text(string(v.Method)),
			reports.Text(v.Country), reports.Text(v.Region), reports.Text(v.Registry), reports.Text(v.TermStart), reports.Text(v.TermEnd),
			reports.Text(v.Status), reports.Num(v.Contracted.String()), reports.Num(v.Replacements.String()), reports.Num(v.Open.String()),
			reports.Num(v.Delivered.String()), reports.Num(v.Holding.String()), reports.Num(v.Retired.String()),
			reports.Num(v.Cancelled.String()), reports.Num(v.Reversed.String()), reports.Num(v.BufferCancelled.String()))
	}
	return c.Flush()
}

// writePosition prints one contract's terms, position and schedule for a terminal.
func writePosition(w io.Writer, st ledger.ContractState, v contractJSON) error {
	c := st.Contract
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Contract %s\t%s\n", c.Code, v.Status)
	fmt.Fprintf(tw, "  buyer / supplier\t%s / %s\n", c.Buyer, c.Supplier)
	fmt.Fprintf(tw, "  project\t%s (%s, %s%s)\n", c.Project, c.Method, c.Country, prefixed(", ", c.Region))
	fmt.Fprintf(tw, "  registry / standard\t%s / %s\n", ledger.RegistryName(c.Registry), orDash(c.Standard))
	fmt.Fprintf(tw, "  durability\t%s\n", orDash(durabilityText(c.Durability)))
	fmt.Fprintf(tw, "  term\t%s to %s (%d contract years), signed %s\n", v.TermStart, v.TermEnd, len(c.Years()), v.SignedOn)
	if v.PricePerTonne != nil {
		fmt.Fprintf(tw, "  price\t%s %s per tonne\n", *v.PricePerTonne, c.Currency)
	}
	fmt.Fprintf(tw, "  delivery\t%s%s\n", c.DeliveryMode, map[bool]string{true: ", over-delivery tolerance " + c.OverDeliveryTolerance.String() + " t", false: ""}[c.OverDeliveryTolerance.IsPositive()])
	if c.Notes != "" {
		fmt.Fprintf(tw, "  notes\t%s\n", c.Notes)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPosition (t CO2e)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := st.Position
	for _, r := range []struct {
		label string
		v     ledger.Tonnes
	}{{"contracted", p.Contracted}, {"replacements", p.Replacements}, {"open", p.Open}, {"delivered", p.Delivered},
		{"holding", p.Holding}, {"retired", p.Retired}, {"cancelled", p.Cancelled}, {"reversed", p.Reversed},
		{"buffer cancelled", p.BufferCancelled}} {
		fmt.Fprintf(tw, "  %s\t%s\t\n", r.label, r.v)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nSchedule (version %d%s)\n", v.ScheduleVersion, map[bool]string{true: "", false: ", even split"}[st.ScheduleExplicit])
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  YEAR\tSTART\tEND\tTONNES\tVINTAGE\tPRICE\tDUE\t")
	for _, l := range v.Schedule {
		price := ""
		if l.PricePerTonne != nil {
			price = *l.PricePerTonne
		}
		vint := ""
		if l.Vintage != 0 {
			vint = fmt.Sprint(l.Vintage)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Year, l.Start, l.End, l.Tonnes, vint, price, l.DueOn)
	}
	return tw.Flush()
}

func durabilityText(d ledger.Durability) string {
	if d.Years == 0 {
		return ""
	}
	return d.String() + " years"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
