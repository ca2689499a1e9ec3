package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// report is the whole Markdown output: a header, then the sections.
type report struct {
	header   []string
	summary  []string // the recommendations, first
	sections []section
}

// section is one part of the report: a title, what was measured, a table,
// and the notes that read it.
type section struct {
	title  string
	intro  []string // paragraphs before the table
	table  table
	notes  []string // paragraphs after the table
	failed bool     // some row could not be measured (its cells say why)
}

func (r report) markdown() string {
	var b strings.Builder
	b.WriteString("# blocklist benchmark\n\n")
	for _, h := range r.header {
		b.WriteString(h + "\n")
	}
	if len(r.summary) > 0 {
		b.WriteString("\n## Which backend\n\nFrom this run's figures (the sections below give them all):\n\n")
		for _, l := range r.summary {
			b.WriteString(l + "\n")
		}
	}
	for _, s := range r.sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.title)
		for _, p := range s.intro {
			b.WriteString(p + "\n\n")
		}
		b.WriteString(s.table.markdown())
		for _, p := range s.notes {
			b.WriteString("\n" + p + "\n")
		}
	}
	return b.String()
}

// table is a Markdown table whose first column is text and whose other
// columns are right-aligned figures.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// markdown renders the table with padded columns, so that it reads in a
// terminal as well as on a web page.
func (t table) markdown() string {
	widths := make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c), 3)
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, w := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := strings.Repeat(" ", w-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for i, w := range widths {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, row := range t.rows {
		line(row)
	}
	return b.String()
}

// fmtDur writes a latency with three significant digits in the unit that
// suits it: "38 ns", "1.21 µs", "24.6 µs", "10.4 ms".
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	case d%time.Millisecond == 0 && d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + " ms"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + " ns"
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + " µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + " ms"
	default:
		return sig3(d.Seconds()) + " s"
	}
}

// sig3 formats v (at least 1, below 1000) with three significant digits.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// fmtRate writes operations per second: "812 k/s", "2.41 M/s".
func fmtRate(perSec float64) string {
	switch {
	case perSec >= 1e6:
		return sig3(perSec/1e6) + " M/s"
	case perSec >= 1e3:
		return sig3(perSec/1e3) + " k/s"
	default:
		return strconv.FormatFloat(perSec, 'f', 0, 64) + "/s"
	}
}

// fmtCount writes a count exactly when small, and in k or M when round.
func fmtCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 10_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	case n >= 100_000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 0, 64) + "k"
	default:
		return strconv.Itoa(n)
	}
}

// fmtSize writes a number of entries: "1k", "100k", "1M".
func fmtSize(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	default:
		return strconv.Itoa(n)
	}
}

// fmtAllocs writes allocations per operation: whole numbers as such, a
// fraction (from allocations of other goroutines, or amortised ones) with
// one decimal.
func fmtAllocs(a float64) string {
	r := float64(int64(a + 0.5))
	if a-r < 0.05 && r-a < 0.05 {
		return strconv.FormatInt(int64(r), 10)
	}
	return strconv.FormatFloat(a, 'f', 1, 64)
}

// fmtRatio writes how many times slower a is than b: "×1.04".
func fmtRatio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	r := float64(a) / float64(b)
	if r >= 10 {
		return "×" + strconv.FormatFloat(r, 'f', 0, 64)
	}
	return "×" + strconv.FormatFloat(r, 'f', 2, 64)
}

// join writes figures of one cell, in the order the header names them.
func join(parts ...string) string { return strings.Join(parts, " · ") }
