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
	labelWidth  = 250 // left column of backend names
	plotLeft    = labelWidth + 10
	plotRight   = chartWidth - 80 // room for the value after the longest bar
	barHeight   = 11
	barGap      = 3
	groupGap    = 16
	chartTop    = 84 // below the title and the legend
	axisHeight  = 40 // below the last group: tick labels
	footerSpace = 36
)

// barSeries are the bars of one group, top to bottom.
var barSeries = []struct {
	label, color string
	raw, revoked bool
}{
	{"Store, revoked id", "#1f5fa8", false, true},
	{"Store, unrevoked id", "#7fb0e0", false, false},
	{"raw client, revoked id", "#555555", true, true},
	{"raw client, unrevoked id", "#b4b4b4", true, false},
}

// chart draws the IsRevoked latency of every compared pair as horizontal
// bars on a log scale: the p50 as the bar, the p99 as a whisker. It is
// drawn by hand with the standard library, so the command needs nothing to
// render it.
func (r *runner) chart() []byte {
	return drawChart(r.compared, machine(), time.Now().UTC())
}

func drawChart(pairs []comparedPair, machineLine string, when time.Time) []byte {
	var ok []comparedPair
	for _, p := range pairs {
		if p.err == nil {
			ok = append(ok, p)
		}
	}
	value := func(p comparedPair, s int) (p50, p99 time.Duration) {
		res := p.store
		if barSeries[s].raw {
			res = p.raw
		}
		if barSeries[s].revoked {
			return res.Revoked.P50, res.Revoked.P99
		}
		return res.Unrevoked.P50, res.Unrevoked.P99
	}

	// The axis spans whole decades around every p50 and p99.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range ok {
		for s := range barSeries {
			p50, p99 := value(p, s)
			for _, d := range []time.Duration{p50, p99} {
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

	groupHeight := len(barSeries)*(barHeight+barGap) - barGap
	plotBottom := chartTop + len(ok)*(groupHeight+groupGap)
	height := plotBottom + axisHeight + footerSpace

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartWidth, height)
	text(&b, 16, 24, "start", "font-size=\"16\" font-weight=\"bold\"", "blocklist: IsRevoked latency per backend, beside its raw client")
	text(&b, 16, 42, "start", `fill="#444444"`, "bar: p50, whisker: p99; one goroutine; log scale. Lower is better.")

	// Legend.
	lx := 16.0
	for _, s := range barSeries {
		fmt.Fprintf(&b, `<rect x="%.1f" y="54" width="12" height="12" fill="%s"/>`+"\n", lx, s.color)
		text(&b, lx+16, 64, "start", "", s.label)
		lx += 16 + float64(len(s.label))*6.6 + 20
	}

	// Grid: a labelled line per decade, faint lines at 2..9.
	for e := lo; e <= hi; e++ {
		d := time.Duration(math.Pow(10, e))
		gx := x(d)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999" stroke-width="1"/>`+"\n", gx, chartTop-6, gx, plotBottom)
		text(&b, gx, float64(plotBottom+16), "middle", `fill="#333333"`, decade(int(e)))
		if e == hi {
			break
		}
		for m := 2.0; m <= 9; m++ {
			mx := x(time.Duration(m * math.Pow(10, e)))
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4" stroke-width="1"/>`+"\n", mx, chartTop-6, mx, plotBottom)
		}
	}

	// Bars.
	for gi, p := range ok {
		top := chartTop + gi*(groupHeight+groupGap)
		text(&b, labelWidth, float64(top+barHeight), "end", `font-weight="bold"`, p.name)
		text(&b, labelWidth, float64(top+2*(barHeight+barGap)+barHeight), "end", `fill="#555555" font-size="11"`, "raw: "+p.rawLib)
		for s, series := range barSeries {
			p50, p99 := value(p, s)
			y := float64(top + s*(barHeight+barGap))
			x50, x99 := x(p50), x(p99)
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: p50 %s, p99 %s</title></rect>`+"\n",
				plotLeft, y, math.Max(x50-plotLeft, 1), barHeight, series.color, esc(p.name+", "+series.label), fmtDur(p50), fmtDur(p99))
			mid := y + barHeight/2.0
			if x99 > x50 {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222222" stroke-width="1"/>`+"\n", x50, mid, x99, mid)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222222" stroke-width="1"/>`+"\n", x99, y+1, x99, y+barHeight-1)
			}
			text(&b, math.Max(x50, x99)+5, y+barHeight-1.5, "start", `font-size="10" fill="#222222"`, fmtDur(p50))
		}
	}
	if len(ok) == 0 {
		text(&b, plotLeft, chartTop+20, "start", "", "no backend could be measured")
	}

	text(&b, 16, float64(height-12), "start", `font-size="11" fill="#555555"`,
		"Measured by go run ./bench on "+machineLine+", "+when.Format("2006-01-02")+".")
	b.WriteString("</svg>\n")
	return b.Bytes()
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
