package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

type systemInfo struct {
	Name       string `json:"name"`
	Ours       bool   `json:"ours"`
	Durability string `json:"durable_per_ack"`
	Notes      string `json:"setup"`
}

type workloadInfo struct {
	Name           string `json:"name"`
	Title          string `json:"title"`
	HigherIsBetter bool   `json:"higher_is_better"`
}

type ratio struct {
	Workload string  `json:"workload"`
	Ours     string  `json:"ours"`
	Peer     string  `json:"peer"`
	Ratio    float64 `json:"ratio"`
	Meaning  string  `json:"meaning"`
}

type targetCheck struct {
	Target string  `json:"target"`
	Figure string  `json:"figure"`
	Ratio  float64 `json:"ratio,omitempty"`
	Need   float64 `json:"need,omitempty"`
	Status string  `json:"status"` // met, missed, not measured
	Source string  `json:"source"` // issue 5 or PERFORMANCE.md
	chart  string
}

type report struct {
	Started   time.Time      `json:"started"`
	Finished  time.Time      `json:"finished"`
	Command   string         `json:"command"`
	Quick     bool           `json:"quick"`
	Scale     float64        `json:"scale"`
	Sizes     sizes          `json:"sizes"`
	Machine   machine        `json:"machine"`
	Systems   []systemInfo   `json:"systems"`
	Workloads []workloadInfo `json:"workloads"`
	Results   []result       `json:"results"`
	Ratios    []ratio        `json:"ratios"`
	Targets   []targetCheck  `json:"targets"`
}

func (r result) summary() string {
	if r.P99ms > 0 {
		return fmt.Sprintf("p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  (%d events)", r.P50ms, r.P99ms, r.P999ms, r.Events)
	}
	s := fmt.Sprintf("%12.0f %s  (%d events, %.2f s)", r.Value, r.Unit, r.Events, r.Seconds)
	if w, ok := r.Extra["handled_while_poison_retried"]; ok {
		s += fmt.Sprintf("  poison: %v; handled meanwhile %v", r.Extra["poison_outcome"], w)
	}
	return s
}

func (rep *report) get(workload, system string) (result, bool) {
	for _, r := range rep.Results {
		if r.Workload == workload && r.System == system && r.Error == "" && r.Value > 0 {
			return r, true
		}
	}
	return result{}, false
}

func (rep *report) higher(workload string) bool {
	for _, w := range rep.Workloads {
		if w.Name == workload {
			return w.HigherIsBetter
		}
	}
	return true
}

func (rep *report) compute() {
	ours := map[string]bool{}
	for _, s := range rep.Systems {
		ours[s.Name] = s.Ours
	}
	for _, w := range rep.Workloads {
		for _, o := range rep.Systems {
			if !o.Ours {
				continue
			}
			ro, ok := rep.get(w.Name, o.Name)
			if !ok {
				continue
			}
			for _, p := range rep.Systems {
				if p.Ours {
					continue
				}
				rp, ok := rep.get(w.Name, p.Name)
				if !ok {
					continue
				}
				if w.HigherIsBetter {
					rep.Ratios = append(rep.Ratios, ratio{w.Name, o.Name, p.Name, ro.Value / rp.Value, "ours ÷ peer throughput: above 1, ours is faster"})
				} else {
					rep.Ratios = append(rep.Ratios, ratio{w.Name, o.Name, p.Name, ro.P99ms / rp.P99ms, "ours ÷ peer p99 latency: below 1, ours is quicker"})
				}
			}
		}
	}
	rep.Targets = rep.targets()
}

const (
	sqliteSys = "monster-sqlite"
	pgSys     = "monster-postgres"
)

var shortName = map[string]string{
	sqliteSys: "ours SQLite", pgSys: "ours PostgreSQL",
	"watermill-gochannel": "Watermill GoChannel", "watermill-sql": "Watermill-SQL", "river": "River",
	"jetstream-sync": "JetStream SyncAlways", "jetstream-default": "JetStream default",
}

func (rep *report) targets() []targetCheck {
	var out []targetCheck
	// atLeast checks ours ÷ peer ≥ need on throughput.
	atLeast := func(source, target, w, o, pw, p string, need float64, chart string) {
		t := targetCheck{Target: target, Need: need, Source: source, chart: chart}
		ro, ok1 := rep.get(w, o)
		rp, ok2 := rep.get(pw, p)
		if !ok1 || !ok2 {
			t.Status = "not measured"
		} else {
			t.Ratio = ro.Value / rp.Value
			t.Figure = fmt.Sprintf("%s %s vs %s %s: ×%.2f", shortName[o], fmtRate(ro.Value), shortName[p], fmtRate(rp.Value), t.Ratio)
			t.Status = status(t.Ratio >= need)
		}
		out = append(out, t)
	}
	const issue, perf = "issue 5", "PERFORMANCE.md"
	atLeast(issue, "Durable publish, 64 producers: ours on SQLite ≥ 10× Watermill-SQL on PostgreSQL", "publish-64", sqliteSys, "publish-64", "watermill-sql", 10, "publish-64: SQLite / Watermill-SQL")
	atLeast(issue, "Durable publish, 64 producers: ours on SQLite ≥ Watermill GoChannel (in memory)", "publish-64", sqliteSys, "publish-64", "watermill-gochannel", 1, "publish-64: SQLite / GoChannel")
	atLeast(issue, "Durable publish, 64 producers: ours on PostgreSQL ≥ 5× Watermill-SQL", "publish-64", pgSys, "publish-64", "watermill-sql", 5, "publish-64: PostgreSQL / Watermill-SQL")
	atLeast(issue, "Durable publish, 64 producers: ours on PostgreSQL ≥ 2× River InsertMany (batches of 1,000) for the same number of events", "publish-64", pgSys, "publish-batch", "river", 2, "publish-64: PostgreSQL / River InsertMany")
	atLeast(issue, "Fan-out to 16 consumers: ours on SQLite ≥ 3× River", "fan-out-16", sqliteSys, "fan-out-16", "river", 3, "fan-out-16: SQLite / River")
	atLeast(issue, "Fan-out to 16 consumers: ours on PostgreSQL ≥ 3× River", "fan-out-16", pgSys, "fan-out-16", "river", 3, "fan-out-16: PostgreSQL / River")
	for _, o := range []struct {
		sys   string
		bound float64
	}{{sqliteSys, 5}, {pgSys, 20}} {
		t := targetCheck{Target: fmt.Sprintf("Latency at 1,000 events/s: %s p99 below River's p50 and ≤ %.0f ms", shortName[o.sys], o.bound), Source: issue, Need: o.bound}
		ro, ok1 := rep.get("latency-1000", o.sys)
		rr, ok2 := rep.get("latency-1000", "river")
		switch {
		case !ok1:
			t.Status = "not measured"
		default:
			met := ro.P99ms <= o.bound
			t.Figure = fmt.Sprintf("%s p99 %.2f ms", shortName[o.sys], ro.P99ms)
			if ok2 {
				met = met && ro.P99ms < rr.P50ms
				t.Figure += fmt.Sprintf("; River p50 %.2f ms", rr.P50ms)
			} else {
				t.Figure += "; River not measured"
				met = false
			}
			t.Status = status(met)
		}
		out = append(out, t)
	}
	for _, w := range []string{"publish-1", "publish-64", "burn-down-1", "burn-down-16"} {
		for _, o := range []string{sqliteSys, pgSys} {
			atLeast(issue, fmt.Sprintf("Within 1.5× of JetStream (SyncAlways) on %s: %s ≥ JetStream ÷ 1.5", w, shortName[o]), w, o, w, "jetstream-sync", 1/1.5,
				fmt.Sprintf("%s: %s / JetStream sync", w, strings.TrimPrefix(shortName[o], "ours ")))
		}
	}
	// The project's own bars (PERFORMANCE.md), where they are absolute.
	abs := func(target, w, o string, need float64) {
		t := targetCheck{Target: target, Need: need, Source: perf}
		if r, ok := rep.get(w, o); ok {
			t.Figure = fmt.Sprintf("%s %s", shortName[o], fmtRate(r.Value))
			t.Status = status(r.Value >= need)
		} else {
			t.Status = "not measured"
		}
		out = append(out, t)
	}
	abs("Durable Log, 64 producers, SQLite ≥ 250,000 events/s", "publish-64", sqliteSys, 250_000)
	atLeast(perf, "Durable Log, 64 producers, PostgreSQL ≥ 10× Watermill-SQL", "publish-64", pgSys, "publish-64", "watermill-sql", 10, "")
	abs("One consumer through history (burn-down, 16 workers) ≥ 500,000 events/s on SQLite", "burn-down-16", sqliteSys, 500_000)
	abs("One consumer through history (burn-down, 16 workers) ≥ 150,000 events/s on PostgreSQL", "burn-down-16", pgSys, 150_000)
	return out
}

func status(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func fmtRate(v float64) string {
	switch {
	case v >= 100:
		return commas(int64(math.Round(v))) + "/s"
	default:
		return fmt.Sprintf("%.1f/s", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (rep *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Monster vs Watermill, River and NATS JetStream — %s\n\n", rep.Started.Format("2006-01-02 15:04 UTC"))
	if rep.Quick {
		p("**Quick mode** (tiny sizes): proves the harness works; the figures mean nothing.\n\n")
	}
	m := rep.Machine
	p("- Command: `%s`\n", rep.Command)
	p("- Code: %s\n", m.Commit)
	p("- Machine: %d cores (%s), %s, Linux %s, %s\n", m.Cores, m.CPU, m.OS, m.Kernel, m.GoVersion)
	p("- Load average (1/5/15 min): %s before, %s after; run took %s\n", m.LoadBefore, m.LoadAfter, rep.Finished.Sub(rep.Started).Round(time.Second))
	p("- PostgreSQL: %s\n", m.Postgres)
	var keys []string
	for k := range m.PGSettings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+m.PGSettings[k])
	}
	p("- PostgreSQL settings: %s\n", strings.Join(kv, ", "))
	sz := rep.Sizes
	p("- Sizes: publish %s events from 1 producer (fewer than the 64-producer case, to keep the time reasonable) and %s from %d producers; batches of %d; burn-down %s; fan-out %s events (%d workers per consumer); latency %s at each rate (%d workers); replay %s; failure path %s events (%d workers)\n",
		commas(int64(sz.Publish1)), commas(int64(sz.Publish64)), sz.Producers, sz.Batch, commas(int64(sz.BurnDown)), commas(int64(sz.FanOut)), sz.FanOutWorkers,
		sz.LatencyFor, sz.LatencyWork, commas(int64(sz.Replay)), commas(int64(sz.Failure)), sz.FailWorkers)
	p("- Payload: the same 200-byte JSON object for every system\n\n")

	p("## Targets\n\n| source | target | figure | status |\n|---|---|---|---|\n")
	for _, t := range rep.Targets {
		p("| %s | %s | %s | **%s** |\n", t.Source, t.Target, t.Figure, t.Status)
	}

	p("\n## Systems\n\n| system | durable per ack? | set-up |\n|---|---|---|\n")
	for _, s := range rep.Systems {
		p("| %s | %s | %s |\n", s.Name, s.Durability, s.Notes)
	}

	for _, w := range rep.Workloads {
		p("\n## %s\n\n", w.Title)
		lat := !w.HigherIsBetter
		if lat {
			p("| system | events | p50 ms | p99 ms | p99.9 ms | max ms | publish acked p50 / p99 ms | achieved rate | SQLite p99 ÷ this | PostgreSQL p99 ÷ this | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		} else {
			p("| system | events | figure | seconds | SQLite ÷ this | PostgreSQL ÷ this | note |\n|---|---:|---:|---:|---:|---:|---|\n")
		}
		so, okS := rep.get(w.Name, sqliteSys)
		po, okP := rep.get(w.Name, pgSys)
		rat := func(o result, ok bool, r result) string {
			if !ok || r.Value == 0 {
				return ""
			}
			if lat {
				return fmt.Sprintf("%.2f", o.P99ms/r.P99ms)
			}
			return fmt.Sprintf("%.2f", o.Value/r.Value)
		}
		for _, s := range rep.Systems {
			var r result
			found := false
			for _, x := range rep.Results {
				if x.Workload == w.Name && x.System == s.Name {
					r, found = x, true
				}
			}
			if !found {
				continue
			}
			note := r.Note
			if r.Error != "" {
				note = "**error**: " + r.Error
			}
			if x, ok := r.Extra["poison_outcome"]; ok {
				note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("poison %v over %.2f s; %v good events handled meanwhile (%v still to do when it first failed)",
					x, r.Extra["poison_retry_seconds"], r.Extra["handled_while_poison_retried"], r.Extra["still_to_do_at_poison_first_failure"])
				if r.Extra["waited_behind_poison"] == true {
					note += "; **others waited behind it**"
				}
			}
			if x, ok := r.Extra["publish_seconds"]; ok {
				note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("publishing took %.2f s", x)
			}
			if x, ok := r.Extra["prefill_seconds"]; ok && w.Name == "replay" {
				note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("caught up in %.1f s (storing them took %.1f s)", r.Seconds, x)
				if r.Events < rep.Sizes.Replay && r.Value > 0 {
					note += fmt.Sprintf("; ≈ %.0f s for %s at this rate", float64(rep.Sizes.Replay)/r.Value, commas(int64(rep.Sizes.Replay)))
				}
			}
			if lat {
				if r.Error != "" {
					p("| %s | %d | | | | | | | | | %s |\n", s.Name, r.Events, note)
					continue
				}
				p("| %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %.0f/s | %s | %s | %s |\n", s.Name, commas(int64(r.Events)), r.P50ms, r.P99ms, r.P999ms, r.Extra["max_ms"], ackCol(r), r.Extra["achieved_rate"],
					rat(so, okS, r), rat(po, okP, r), note)
				continue
			}
			fig := ""
			if r.Error == "" {
				fig = fmtRate(r.Value)
			}
			p("| %s | %s | %s | %.2f | %s | %s | %s |\n", s.Name, commas(int64(r.Events)), fig, r.Seconds, rat(so, okS, r), rat(po, okP, r), note)
		}
		if w.Name == "publish-64" {
			if rb, ok := rep.get("publish-batch", "river"); ok {
				p("\nRiver `InsertMany` (batches of 1,000, the publish-batch workload) for comparison: %s.\n", fmtRate(rb.Value))
			}
		}
	}
	p("\nRatios are ours ÷ peer from this one run: for throughput above 1 means ours is faster; for latency below 1 means ours is quicker.\n")
	return b.String()
}

// write stores the Markdown, JSON and chart, named by the start time.
func (rep *report) write(dir string) ([]string, error) {
	stamp := rep.Started.Format("20060102-150405")
	if rep.Quick {
		stamp += "-quick"
	}
	base := filepath.Join(dir, stamp)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := []string{base + ".json", base + ".md", base + ".png"}
	if err := os.WriteFile(paths[0], append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(paths[1], []byte(rep.markdown()), 0o644); err != nil {
		return nil, err
	}
	if err := rep.chart(paths[2]); err != nil {
		return paths[:2], fmt.Errorf("chart: %w", err)
	}
	return paths, nil
}

// chart draws the targets' ratios as horizontal bars on a log scale, each
// with its target as a red mark.
func (rep *report) chart(path string) error {
	var labels []string
	var vals, needs plotter.Values
	for _, t := range rep.Targets {
		if t.chart == "" || t.Ratio <= 0 {
			continue
		}
		labels = append(labels, fmt.Sprintf("%s (≥%s)", t.chart, trimFloat(t.Need)))
		vals = append(vals, t.Ratio)
		needs = append(needs, t.Need)
	}
	p := plot.New()
	p.Title.Text = "Monster ÷ peer, one run on one machine (" + rep.Started.Format("2006-01-02") + ")"
	p.X.Label.Text = "ours ÷ peer (log scale; right of ×1 = ours faster); red mark = target"
	if len(vals) == 0 {
		p.Title.Text += ": no ratios measured"
		return p.Save(8*vg.Inch, 3*vg.Inch, path)
	}
	// Reverse so the first target is on top.
	for i, j := 0, len(vals)-1; i < j; i, j = i+1, j-1 {
		vals[i], vals[j] = vals[j], vals[i]
		needs[i], needs[j] = needs[j], needs[i]
		labels[i], labels[j] = labels[j], labels[i]
	}
	// Bars are log10(ratio) on a linear axis, labelled as ratios: a bar
	// to the right of 1 means ours is faster.
	logv := make(plotter.Values, len(vals))
	for i, v := range vals {
		logv[i] = math.Log10(v)
	}
	bars, err := plotter.NewBarChart(logv, vg.Points(14))
	if err != nil {
		return err
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	pts := make(plotter.XYs, len(needs))
	for i, n := range needs {
		pts[i] = plotter.XY{X: math.Log10(n), Y: float64(i)}
	}
	marks, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	marks.GlyphStyle = draw.GlyphStyle{Color: color.RGBA{R: 220, A: 255}, Radius: vg.Points(9), Shape: vLine{}}
	p.Add(marks)
	p.NominalY(labels...)
	lo, hi := 0.0, 0.0
	for i := range vals {
		lo = math.Min(lo, math.Min(logv[i], pts[i].X))
		hi = math.Max(hi, math.Max(logv[i], pts[i].X))
	}
	p.X.Min, p.X.Max = math.Floor(lo-0.05), math.Ceil(hi+0.05)
	var ticks []plot.Tick
	for e := p.X.Min; e <= p.X.Max; e++ {
		ticks = append(ticks, plot.Tick{Value: e, Label: "×" + strconv.FormatFloat(math.Pow(10, e), 'g', -1, 64)})
		for _, k := range []float64{2, 5} {
			if v := e + math.Log10(k); v < p.X.Max {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	return p.Save(10*vg.Inch, vg.Length(1.2+0.32*float64(len(vals)))*vg.Inch, path)
}

// vLine is a vertical line glyph: a target mark across a horizontal bar.
type vLine struct{}

func (vLine) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.StrokeLine2(draw.LineStyle{Color: sty.Color, Width: vg.Points(2.5)}, pt.X, pt.Y-sty.Radius, pt.X, pt.Y+sty.Radius)
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func ackCol(r result) string {
	a, ok1 := r.Extra["ack_p50_ms"].(float64)
	b, ok2 := r.Extra["ack_p99_ms"].(float64)
	if !ok1 || !ok2 {
		return ""
	}
	return fmt.Sprintf("%.2f / %.2f", a, b)
}
