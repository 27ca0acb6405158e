// Command clbench seeds a large synthetic ledger (by default 1,000 contracts and 10 million
// postings) and prints how long each report, the audit and the write path take on it. It is
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
	flag.StringVar(&cfg.Only, "only", "", "measure only reports, audit or writes")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprofile := flag.String("memprofile", "", "write a profile of what the run allocated to this file")
	flag.Parse()
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
