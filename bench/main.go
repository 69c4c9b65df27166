// Command bench measures Monster side by side with Watermill (GoChannel and
// watermill-sql), River and NATS JetStream in one run on one machine, on
// the same workloads and the same 200-byte JSON payloads, and writes a
// Markdown table, a JSON file and a PNG chart of the main ratios to
// bench/results (or -out).
//
//	go run ./bench                 # the full run (several minutes)
//	go run ./bench -quick -out DIR # tiny sizes: proves the harness works
//
// It needs the local PostgreSQL (-pg, default
// postgres://postgres@127.0.0.1:5432/test); every system gets fresh schemas,
// dropped afterwards. NATS runs embedded on a random port.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		quick      = flag.Bool("quick", false, "tiny sizes, to prove the harness works (CI); asserts nothing about speed")
		scale      = flag.Float64("scale", 1, "multiply every workload's size by this")
		replayN    = flag.Int("replay", 0, "events stored before the replay consumer is added (default 1,000,000 × scale)")
		out        = flag.String("out", "", "directory for the results (default bench/results under the repository root)")
		pgURL      = flag.String("pg", "postgres://postgres@127.0.0.1:5432/test", "PostgreSQL URL (no query parameters)")
		only       = flag.String("systems", "", "comma-separated systems to run (default all)")
		onlyW      = flag.String("workloads", "", "comma-separated workloads to run (default all)")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		code       = flag.String("code", "", "describe the code measured (default: git's HEAD, and whether the tree has uncommitted changes)")
		render     = flag.String("render", "", "render the Markdown and chart again from this JSON results file, and exit")
	)
	flag.Parse()
	if *render != "" {
		return rerender(*render)
	}

	sz := defaultSizes(*scale)
	if *quick {
		sz = defaultSizes(0.01)
		sz.Publish1, sz.Publish64, sz.BurnDown, sz.FanOut, sz.Replay, sz.Failure = 100, 500, 500, 200, 1000, 500
		sz.LatencyFor = 500 * time.Millisecond
		sz.Timeout = 2 * time.Minute
	}
	if *replayN > 0 {
		sz.Replay = *replayN
	}
	if *out == "" {
		*out = defaultOut()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	env, err := newEnvironment(ctx, *pgURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	defer env.cleanup()

	rep := &report{
		Started: time.Now().UTC(), Command: commandLine(),
		Quick: *quick, Scale: *scale, Sizes: sz,
		Machine: env.machine(ctx),
	}
	if *code != "" {
		rep.Machine.Commit = *code
	}
	var systems []system
	systems = append(systems, monsterSystems(env)...)
	systems = append(systems, watermillSystems(env)...)
	systems = append(systems, riverSystem(env))
	systems = append(systems, natsSystems(env)...)
	if *only != "" {
		keep := strings.Split(*only, ",")
		systems = slices.DeleteFunc(systems, func(s system) bool { return !slices.Contains(keep, s.name) })
	}
	ws := workloads()
	if *onlyW != "" {
		keep := strings.Split(*onlyW, ",")
		ws = slices.DeleteFunc(ws, func(w workload) bool { return !slices.Contains(keep, w.name) })
	}
	for _, s := range systems {
		rep.Systems = append(rep.Systems, systemInfo{Name: s.name, Ours: s.ours, Durability: s.durability, Notes: s.notes})
	}
	for _, w := range ws {
		rep.Workloads = append(rep.Workloads, workloadInfo{Name: w.name, Title: w.title, HigherIsBetter: w.higher})
	}

	failures := 0
	for _, s := range systems {
		if ctx.Err() != nil {
			break
		}
		b, err := s.open(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%-20s open: %v\n", s.name, err)
			for _, w := range ws {
				rep.Results = append(rep.Results, result{Workload: w.name, System: s.name, Error: "open: " + err.Error()})
				failures++
			}
			continue
		}
		for _, w := range ws {
			if ctx.Err() != nil {
				break
			}
			r := result{Workload: w.name, System: s.name}
			runtime.GC()
			wctx, wcancel := context.WithTimeout(ctx, sz.Timeout+2*time.Minute)
			wsz := sz
			if d := s.smaller[w.name]; d > 1 && !*quick {
				wsz = wsz.divided(d)
				r.Note = fmt.Sprintf("sizes ÷%d for this system (full size would take minutes)", d)
			}
			err := w.run(wctx, s, b, wsz, &r)
			wcancel()
			if err != nil {
				r.Error = err.Error()
				failures++
				fmt.Fprintf(os.Stderr, "%-20s %-14s FAILED: %v\n", s.name, w.name, err)
			} else {
				fmt.Fprintf(os.Stderr, "%-20s %-14s %s\n", s.name, w.name, r.summary())
			}
			rep.Results = append(rep.Results, r)
		}
		if err := b.close(); err != nil {
			fmt.Fprintf(os.Stderr, "%-20s close: %v\n", s.name, err)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadAfter = loadAverage()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		failures++
	}
	rep.compute()
	paths, err := rep.write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: write results:", err)
		return 1
	}
	if !*quick {
		fmt.Println(rep.markdown())
	}
	for _, p := range paths {
		fmt.Fprintln(os.Stderr, "wrote", p)
	}
	fmt.Printf("bench: %d passed, %d failed\n", len(rep.Results)-failures, failures)
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d workload(s) failed or lost events\n", failures)
		return 1
	}
	return 0
}

// defaultOut is bench/results beside this program's sources: the working
// directory's bench/results when run from the repository root, or
// ./results when run from bench/.
func defaultOut() string {
	if st, err := os.Stat("bench/go.mod"); err == nil && !st.IsDir() {
		return filepath.Join("bench", "results")
	}
	return "results"
}

// rerender rewrites a run's Markdown and chart from its JSON file.
func rerender(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", path, err)
		return 2
	}
	rep.Ratios = nil
	rep.compute()
	base := strings.TrimSuffix(path, ".json")
	if err := os.WriteFile(base+".md", []byte(rep.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := rep.chart(base + ".png"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: chart:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "wrote", base+".md", base+".png")
	return 0
}

// commandLine is how this run was started, quoted for a shell.
func commandLine() string {
	parts := []string{"go run ./bench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"$()*?;&|<>") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
