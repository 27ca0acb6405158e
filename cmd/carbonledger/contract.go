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

	"github.com/carbonledger/carbonledger/internal/service"
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
		return writeJSON(a.stdout, service.ContractView(st))
	}
	verb := "signed"
	if res.Replay {
		verb = "already recorded (same terms, nothing changed)"
	}
	fmt.Fprintf(a.stdout, "contract %s %s: %s t, %s -> %s, entry %s\n", c.Code, verb, st.Position.Contracted, reports.Inert(c.Supplier), reports.Inert(c.Buyer), res.Entry.ID)
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
	views := make([]service.ContractJSON, len(all))
	for i, st := range all {
		views[i] = service.ContractView(st)
	}
	switch *format {
	case "json":
		return writeJSON(a.stdout, map[string]any{"contracts": views})
	case "csv":
		return service.WriteContractsCSV(a.stdout, views)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CODE\tBUYER\tSUPPLIER\tMETHOD\tTERM\tCONTRACTED\tDELIVERED\tRETIRED\tOPEN\tSTATUS\t")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\t%s\t%s\t%s\t%s\t%s\t\n", v.Code, reports.Inert(v.Buyer), reports.Inert(v.Supplier), v.Method, v.TermStart, v.TermEnd,
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
	v := service.ContractView(st)
	switch *format {
	case "json":
		return writeJSON(a.stdout, v)
	case "csv":
		return service.WriteContractsCSV(a.stdout, []service.ContractJSON{v})
	}
	return writePosition(a.stdout, st, v)
}

// writePosition prints one contract's terms, position and schedule for a terminal.
func writePosition(w io.Writer, st ledger.ContractState, v service.ContractJSON) error {
	c := st.Contract
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Contract %s\t%s\n", c.Code, v.Status)
	fmt.Fprintf(tw, "  buyer / supplier\t%s / %s\n", reports.Inert(c.Buyer), reports.Inert(c.Supplier))
	fmt.Fprintf(tw, "  project\t%s (%s, %s%s)\n", reports.Inert(c.Project), c.Method, c.Country, prefixed(", ", reports.Inert(c.Region)))
	fmt.Fprintf(tw, "  registry / standard\t%s / %s\n", ledger.RegistryName(c.Registry), orDash(reports.Inert(c.Standard)))
	fmt.Fprintf(tw, "  durability\t%s\n", orDash(durabilityText(c.Durability)))
	fmt.Fprintf(tw, "  term\t%s to %s (%d contract years), signed %s\n", v.TermStart, v.TermEnd, len(c.Years()), v.SignedOn)
	if v.PricePerTonne != nil {
		fmt.Fprintf(tw, "  price\t%s %s per tonne\n", *v.PricePerTonne, c.Currency)
	}
	fmt.Fprintf(tw, "  delivery\t%s%s\n", c.DeliveryMode, map[bool]string{true: ", over-delivery tolerance " + c.OverDeliveryTolerance.String() + " t", false: ""}[c.OverDeliveryTolerance.IsPositive()])
	if c.Notes != "" {
		fmt.Fprintf(tw, "  notes\t%s\n", reports.Inert(c.Notes))
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
