package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/carbonledger/carbonledger/internal/pgdev"
	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/migrations"
)

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("migrate", "migrate [--db URL]")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate takes no arguments")
	}
	url, _, err := a.resolve(ctx)
	if err != nil {
		return err
	}
	done, err := store.Migrate(ctx, url)
	if err != nil {
		return err
	}
	ms, _ := migrations.All()
	fmt.Fprintf(a.stdout, "schema is at version %04d (%d migrations, %d applied now)\n", ms[len(ms)-1].Version, len(ms), len(done))
	return nil
}

func cmdDB(ctx context.Context, a *app, args []string) error {
	if len(args) == 1 && isHelp(args[0]) {
		return a.subcommandHelp("db start|stop|url|status", "")
	}
	if len(args) != 1 {
		return usagef("db needs one subcommand: start, stop, url or status")
	}
	c, err := pgdev.Default(a.stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "start", "url":
		u, err := c.URL(ctx, "carbonledger")
		if err != nil {
			return err
		}
		if args[0] == "url" {
			fmt.Fprintln(a.stdout, u)
		} else {
			p, _ := url.Parse(u)
			fmt.Fprintf(a.stdout, "private cluster running in %s (%s)\n", c.Dir, p.Redacted())
		}
		return nil
	case "stop":
		return c.Stop(ctx)
	case "status":
		fmt.Fprintf(a.stdout, "private cluster directory: %s\nPostgreSQL binaries: %s\n", c.Dir, c.BinDir)
		return nil
	}
	return usagef("db: unknown subcommand %q (start, stop, url, status)", args[0])
}
