package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"time"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 980
	labelWidth  = 250 // left column of group names
	plotLeft    = labelWidth + 10
	plotRight   = chartWidth - 80 // room for the value after the longest bar
	barHeight   = 11
	barGap      = 3
	groupGap    = 16
	panelHead   = 70 // a panel's title, subtitle and legend
	axisHeight  = 40 // below a panel's last group: tick labels
	footerSpace = 36
)

// seriesStyle is one kind of bar of a panel, as its legend names it.
type seriesStyle struct{ label, color string }

// bar is one bar: the p50 as the bar, the p99 as a whisker.
type bar struct {
	series   int
	p50, p99 time.Duration
}

// barGroup is the bars of one row of a table, with its label.
type barGroup struct {
	label, sublabel string
	bars            []bar
}

// panel is one chart of the picture, with its own log axis.
type panel struct {
	title, subtitle string
	series          []seriesStyle
	groups          []barGroup
}

// chart draws the run's figures as panels of horizontal bars on log
// scales, p50 as the bar and p99 as a whisker: IsRevoked of every compared
// pair, Revoke of every compared pair, and the propagation rows. It is
// drawn by hand with the standard library, so the command needs nothing to
// render it.
func (r *runner) chart() []byte {
	return drawChart(r.compared, r.propagated, machine(), time.Now().UTC())
}

func drawChart(pairs []comparedPair, props []propagated, machineLine string, when time.Time) []byte {
	var ok []comparedPair
	for _, p := range pairs {
		if p.err == nil {
			ok = append(ok, p)
		}
	}
	lookups := panel{
		title:    "IsRevoked latency per backend, beside its raw client",
		subtitle: "bar: p50, whisker: p99; one goroutine; log scale. Lower is better.",
		series: []seriesStyle{
			{"Store, revoked id", "#1f5fa8"}, {"Store, unrevoked id", "#7fb0e0"},
			{"raw client, revoked id", "#555555"}, {"raw client, unrevoked id", "#b4b4b4"},
		},
	}
	revokes := panel{
		title:    "Revoke latency per backend, beside its raw client",
		subtitle: "bar: p50, whisker: p99; one goroutine; log scale. bbolt waits for its batch and an fsync.",
		series:   []seriesStyle{{"Store", "#a8501f"}, {"raw client", "#555555"}},
	}
	for _, p := range ok {
		lookups.groups = append(lookups.groups, barGroup{label: p.name, sublabel: "raw: " + p.rawLib, bars: []bar{
			{0, p.store.Revoked.P50, p.store.Revoked.P99}, {1, p.store.Unrevoked.P50, p.store.Unrevoked.P99},
			{2, p.raw.Revoked.P50, p.raw.Revoked.P99}, {3, p.raw.Unrevoked.P50, p.raw.Unrevoked.P99},
		}})
		revokes.groups = append(revokes.groups, barGroup{label: p.name, sublabel: "raw: " + p.rawLib, bars: []bar{
			{0, p.store.Revoke.P50, p.store.Revoke.P99}, {1, p.raw.Revoke.P50, p.raw.Revoke.P99},
		}})
	}
	panels := []panel{lookups, revokes}
	if len(props) > 0 {
		prop := panel{
			title:    "Propagation: a logout on instance A seen by instance B",
			subtitle: "from A's Revoke to B's watch applying it, over Redis; bar: p50, whisker: p99; log scale.",
			series:   []seriesStyle{{"A's Revoke to B's cache", "#2f8f4f"}},
		}
		for _, p := range props {
			prop.groups = append(prop.groups, barGroup{label: p.name, sublabel: "B in " + p.mode + " mode",
				bars: []bar{{0, p.p50, p.p99}}})
		}
		panels = append(panels, prop)
	}

	var body bytes.Buffer
	y := 0
	for _, p := range panels {
		y += drawPanel(&body, p, y)
	}
	height := y + footerSpace

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartWidth, height)
	b.Write(body.Bytes())
	text(&b, 16, float64(height-12), "start", `font-size="11" fill="#555555"`,
		"Measured by go run ./bench on "+machineLine+", "+when.Format("2006-01-02")+".")
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// drawPanel draws p with its top at top and returns the height it took.
func drawPanel(b *bytes.Buffer, p panel, top int) int {
	// The axis spans whole decades around every p50 and p99.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range p.groups {
		for _, br := range g.bars {
			for _, d := range []time.Duration{br.p50, br.p99} {
				if d > 0 {
					lo = math.Min(lo, math.Log10(float64(d)))
					hi = math.Max(hi, math.Log10(float64(d)))
				}
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 4
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	x := func(d time.Duration) float64 {
		v := math.Log10(math.Max(float64(d), math.Pow(10, lo)))
		return plotLeft + (v-lo)/(hi-lo)*(plotRight-plotLeft)
	}

	plotTop := top + panelHead
	groupHeight := len(p.series)*(barHeight+barGap) - barGap
	groupHeight = max(groupHeight, 2*(barHeight+barGap)+barHeight) // room for the sublabel
	plotBottom := plotTop + len(p.groups)*(groupHeight+groupGap)
	if len(p.groups) == 0 {
		plotBottom = plotTop + 30
	}

	text(b, 16, float64(top+24), "start", `font-size="16" font-weight="bold"`, "blocklist: "+p.title)
	text(b, 16, float64(top+42), "start", `fill="#444444"`, p.subtitle)
	lx := 16.0
	for _, s := range p.series {
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, top+54, s.color)
		text(b, lx+16, float64(top+64), "start", "", s.label)
		lx += 16 + float64(len(s.label))*6.6 + 20
	}

	// Grid: a labelled line per decade, faint lines at 2..9.
	for e := lo; e <= hi; e++ {
		gx := x(time.Duration(math.Pow(10, e)))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999" stroke-width="1"/>`+"\n", gx, plotTop-6, gx, plotBottom)
		text(b, gx, float64(plotBottom+16), "middle", `fill="#333333"`, decade(int(e)))
		if e == hi {
			break
		}
		for m := 2.0; m <= 9; m++ {
			mx := x(time.Duration(m * math.Pow(10, e)))
			fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4" stroke-width="1"/>`+"\n", mx, plotTop-6, mx, plotBottom)
		}
	}

	for gi, g := range p.groups {
		gtop := plotTop + gi*(groupHeight+groupGap)
		text(b, labelWidth, float64(gtop+barHeight), "end", `font-weight="bold"`, g.label)
		text(b, labelWidth, float64(gtop+2*(barHeight+barGap)+barHeight), "end", `fill="#555555" font-size="11"`, g.sublabel)
		for _, br := range g.bars {
			series := p.series[br.series]
			y := float64(gtop + br.series*(barHeight+barGap))
			x50, x99 := x(br.p50), x(br.p99)
			fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: p50 %s, p99 %s</title></rect>`+"\n",
				plotLeft, y, math.Max(x50-plotLeft, 1), barHeight, series.color, esc(g.label+", "+series.label), fmtDur(br.p50), fmtDur(br.p99))
			mid := y + barHeight/2.0
			if x99 > x50 {
				fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222222" stroke-width="1"/>`+"\n", x50, mid, x99, mid)
				fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222222" stroke-width="1"/>`+"\n", x99, y+1, x99, y+barHeight-1)
			}
			text(b, math.Max(x50, x99)+5, y+barHeight-1.5, "start", `font-size="10" fill="#222222"`, fmtDur(br.p50))
		}
	}
	if len(p.groups) == 0 {
		text(b, plotLeft, float64(plotTop+20), "start", "", "nothing measured")
	}
	return plotBottom + axisHeight - top
}

// decade names the duration 10^e nanoseconds: "10 ns", "1 µs", "100 ms".
func decade(e int) string {
	units := []string{"ns", "µs", "ms", "s"}
	u := min(max(e/3, 0), len(units)-1)
	n := 1
	for range e - 3*u {
		n *= 10
	}
	return fmt.Sprintf("%d %s", n, units[u])
}

// text writes one <text> element; attrs are extra attributes, already
// quoted.
func text(b *bytes.Buffer, x, y float64, anchor, attrs, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, attrs, esc(s))
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
