package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/carbonledger/carbonledger/internal/service"
	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

func cmdAudit(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "keygen" {
		return auditKeygen(a, args[1:])
	}
	fs := a.newFlags("audit", "audit [--format text|json] [--statement FILE [--signing-key KEY]] [--since FILE [--public-key KEY.pub]]")
	format := formatFlag(fs, "text", "text", "json")
	stmtOut := fs.String("statement", "", "write an audit statement (totals, entry count, chain digest) to FILE")
	signKey := fs.String("signing-key", "", "Ed25519 private `key` (PEM) to sign the statement with (default $CARBONLEDGER_SIGNING_KEY)")
	since := fs.String("since", "", "verify that the books today extend the statement in FILE")
	pubKey := fs.String("public-key", "", "with --since: the public key (PEM) the statement must be signed with")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("audit takes flags only (unexpected %q); `audit keygen --out FILE` makes a signing key", pos[0])
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	if *signKey == "" {
		*signKey = os.Getenv("CARBONLEDGER_SIGNING_KEY")
	}
	var prior *ledger.Statement
	var want ed25519.PublicKey
	if *since != "" {
		b, err := os.ReadFile(*since)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		prior = &ledger.Statement{}
		if err := json.Unmarshal(b, prior); err != nil || prior.Version != 1 {
			return ledger.Invalid("--since", *since, "is not an audit statement written by `carbonledger audit --statement`")
		}
		if *pubKey != "" {
			if want, err = ledger.LoadPublicKey(*pubKey); err != nil {
				return err
			}
		}
	} else if *pubKey != "" {
		return usagef("--public-key goes with --since")
	}
	var key ed25519.PrivateKey
	if *stmtOut != "" && *signKey != "" {
		if key, err = ledger.LoadPrivateKey(*signKey); err != nil {
			return err
		}
	}

	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	out, res, err := service.Audit(ctx, s, prior, want)
	if err != nil {
		return err
	}
	if prior != nil {
		out.Since = *since
	}
	fmt.Fprintf(a.stderr, "audit: %d entries, %d postings in %d books checked in %s\n", res.Entries, res.Postings, len(res.Heads), time.Since(start).Round(time.Millisecond))
	if *stmtOut != "" {
		if !out.OK {
			fmt.Fprintln(a.stderr, "audit: the books have findings; the statement records them as they are")
		}
		st := service.Statement(res)
		if key != nil {
			if err := st.Sign(key); err != nil {
				return err
			}
		}
		if err := a.writeOutput(*stmtOut, func(w io.Writer) error { return writeJSON(w, st) }); err != nil {
			return err
		}
	}
	if *format == "json" {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		writeAuditText(a.stdout, out)
	}
	if !out.OK {
		return &exitError{code: 1}
	}
	return nil
}

func writeAuditText(w io.Writer, r service.AuditJSON) {
	verdict := "clean"
	if !r.OK {
		verdict = fmt.Sprintf("%d finding(s)", len(r.Findings))
	}
	fmt.Fprintf(w, "audit: %s\n  entries %d, postings %d, books %d\n  known at %s\n  chain digest %s\n", verdict, r.Entries, r.Postings, r.Books, r.KnownAt, r.Digest)
	if len(r.RecordedBy) > 0 {
		who := make([]string, 0, len(r.RecordedBy))
		for k := range r.RecordedBy {
			who = append(who, k)
		}
		sort.Strings(who)
		for i, k := range who {
			who[i] = fmt.Sprintf("%s %d", reports.Inert(k), r.RecordedBy[k])
		}
		fmt.Fprintf(w, "  entries recorded by %s\n", strings.Join(who, ", "))
	}
	if r.Since != "" {
		fmt.Fprintf(w, "  extends the statement %s: %v\n", reports.Inert(r.Since), r.OK)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "\n[%s] %s\n  at:       %s\n  expected: %s\n  found:    %s\n", f.Check, reports.Inert(f.Message), reports.Inert(f.Entry),
			reports.Inert(f.Expected), reports.Inert(f.Found))
	}
}

func auditKeygen(a *app, args []string) error {
	fs := a.newFlags("audit keygen", "audit keygen --out FILE")
	out := fs.String("out", "", "where to write the private key (FILE) and the public key (FILE.pub)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *out == "" {
		return usagef("audit keygen needs --out FILE")
	}
	if err := ledger.GenerateKey(*out); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote the signing key %s (keep it secret) and the public key %s.pub (give it to your auditor)\n", *out, *out)
	return nil
}
