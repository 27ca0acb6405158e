package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carbonledger/carbonledger/internal/httpapi"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// listening is told the address the server listens on (tests listen on port 0).
var listening = func(addr string) {}

func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("serve", "serve [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE] [--signing-key KEY] [--read-db URL]")
	addr := fs.String("addr", envOr("CARBONLEDGER_ADDR", "127.0.0.1:8080"), "address to listen on ($CARBONLEDGER_ADDR overrides the default)")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM); with --tls-key the server speaks HTTPS only")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	signKey := fs.String("signing-key", "", "Ed25519 private `key` (PEM) that signs the audit statements the API writes (default $CARBONLEDGER_SIGNING_KEY)")
	fs.IntVar(&a.futureDays, "future-days", 1, "how many days past today an effective date may lie")
	readDB := fs.String("read-db", os.Getenv("CARBONLEDGER_READ_DATABASE_URL"), "a hot standby `URL` the reports, the audit, the export and the dashboard read from (default $CARBONLEDGER_READ_DATABASE_URL; none: the primary)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes flags only (unexpected %q)", pos[0])
	}
	if (*cert == "") != (*key == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if *signKey == "" {
		*signKey = os.Getenv("CARBONLEDGER_SIGNING_KEY")
	}
	var sk ed25519.PrivateKey
	if *signKey != "" {
		if sk, err = ledger.LoadPrivateKey(*signKey); err != nil {
			return err
		}
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	log := slog.New(slog.NewJSONHandler(a.stderr, nil))
	api := httpapi.New(s, log)
	if *readDB != "" {
		// the standby serves the same schema read-only: it is checked, never migrated
		rs, err := store.Open(ctx, *readDB)
		if err != nil {
			return fmt.Errorf("--read-db: %w", err)
		}
		defer rs.Close()
		rs.Now, rs.FutureTolerance = s.Now, s.FutureTolerance
		api.Reads = rs
	}
	api.Now, api.FutureTolerance, api.SigningKey = a.now, time.Duration(a.futureDays)*24*time.Hour, sk

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // an export of a large ledger streams for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	log.Info("listening", "url", scheme+"://"+ln.Addr().String(), "version", version())
	listening(ln.Addr().String())
	done := make(chan error, 1)
	go func() {
		if *cert != "" {
			done <- srv.ServeTLS(ln, *cert, *key)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Stop taking requests and let the running ones finish (up to 30 s).
	log.Info("shutting down: finishing the requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func cmdToken(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("token needs a subcommand: create, list or revoke")
	}
	if isHelp(args[0]) {
		return a.subcommandHelp("token create|list|revoke [flags]", "token SUBCOMMAND -h")
	}
	switch args[0] {
	case "create":
		fs := a.newFlags("token create", "token create --name NAME --role viewer|recorder|admin [--contract CODE]...")
		name := fs.String("name", "", "the token's name, shown in the access log (required; never reused)")
		role := fs.String("role", "", "viewer (reads), recorder (also records operations) or admin (also adds and amends contracts) (required)")
		var contracts multiFlag
		fs.Var(&contracts, "contract", "limit the token to the contract `CODE` (repeat for several; default every contract)")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("token create takes flags only (unexpected %q)", pos[0])
		}
		if *name == "" || *role == "" {
			return usagef("token create needs --name and --role")
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		secret, err := s.CreateToken(ctx, *name, *role, contracts)
		if err != nil {
			return flagNamed(err)
		}
		fmt.Fprintln(a.stdout, secret)
		fmt.Fprintf(a.stderr, "token %s (%s) created; it is shown this once: keep it secret (send it as Authorization: Bearer TOKEN)\n", *name, *role)
		return nil
	case "list":
		fs := a.newFlags("token list", "token list [--format table|json]")
		format := formatFlag(fs, "table", "table", "json")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("token list takes no arguments")
		}
		if err := checkFormat(*format, "table", "json"); err != nil {
			return err
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		ts, err := s.Tokens(ctx)
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeJSON(a.stdout, map[string]any{"tokens": ts})
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCONTRACTS\tCREATED\tREVOKED")
		for _, t := range ts {
			scope, revoked := "all", ""
			if t.Contracts != nil {
				scope = strings.Join(t.Contracts, ",")
			}
			if t.RevokedAt != nil {
				revoked = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, scope, t.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		fs := a.newFlags("token revoke", "token revoke NAME")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usagef("token revoke needs exactly one token name")
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.RevokeToken(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "token %s revoked\n", pos[0])
		return nil
	}
	return usagef("token: unknown subcommand %q (create, list, revoke)", args[0])
}

// multiFlag is a flag that may be repeated.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
