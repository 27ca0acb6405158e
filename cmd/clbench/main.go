// Command clbench seeds a large synthetic ledger (by default 1,000 contracts and 10 million
// postings) and prints how long each report, the audit and the write path take on it, how
// fast deliveries go through the HTTP API beside the store, then how fast `carbonledger
// import` loads a million deliveries beside plain COPY. It is
// `make bench`; `make bench-smoke` runs it small. Figures, not pass/fail: no test depends on
// how fast this machine is.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/carbonledger/carbonledger/internal/bench"
)

func main() {
	// A command runs for seconds with a small live heap, which the default GOGC=100 collects
	// over and over (a fifth of a report's CPU time, measured); trading a few MiB of memory for
	// that time is right here. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	cfg := bench.Config{Out: os.Stdout, Log: os.Stderr}
	flag.IntVar(&cfg.Contracts, "contracts", 1000, "contracts to seed")
	flag.IntVar(&cfg.Postings, "postings", 10_000_000, "postings to seed (about)")
	flag.IntVar(&cfg.Runs, "runs", 5, "timed runs of each measurement")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the synthetic ledger")
	flag.BoolVar(&cfg.Reseed, "reseed", false, "drop the seeded benchmark database and seed it again")
	flag.StringVar(&cfg.Only, "only", "", "measure only reports, audit, writes, api or bulk (writes, api and bulk seed nothing)")
	flag.IntVar(&cfg.Write.Seconds, "write-seconds", 10, "measured seconds of each write concurrency level (and of each level of the api section)")
	flag.IntVar(&cfg.Write.Warmup, "write-warmup", 2, "seconds of warm-up, not measured, before each write level (and api level)")
	history := flag.String("history", "0,10000,100000", "prior deliveries of the contracts the single-delivery latency is measured on, the first the baseline")
	flag.IntVar(&cfg.Write.Samples, "history-samples", 200, "timed deliveries on each history contract")
	flag.IntVar(&cfg.Write.PgbenchScale, "pgbench-scale", 32, "pgbench -i scale of the TPC-B baseline (at least the largest client count, 32)")
	flag.IntVar(&cfg.Bulk.Rows, "bulk-rows", 1_000_000, "deliveries in the file the bulk section imports")
	flag.IntVar(&cfg.Bulk.Contracts, "bulk-contracts", 1000, "contracts the bulk section's deliveries are spread over")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprofile := flag.String("memprofile", "", "write a profile of what the run allocated to this file")
	flag.Parse()
	for _, f := range strings.Split(*history, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "clbench: -history %q: want counts of prior deliveries such as 0,10000,100000\n", *history)
			os.Exit(2)
		}
		cfg.Write.History = append(cfg.Write.History, n)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "clbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "clbench: memory profile:", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "clbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
