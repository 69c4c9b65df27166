package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// progressFlag is --progress: on, off, or (unset) on when stderr is a
// terminal and the output is not --json.
type progressFlag struct {
	set, on bool
}

func (f *progressFlag) IsBoolFlag() bool { return true }

func (f *progressFlag) String() string {
	if f == nil || !f.set {
		return "auto"
	}
	return strconv.FormatBool(f.on)
}

func (f *progressFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	f.set, f.on = true, on
	return nil
}

func registerProgress(fs *flag.FlagSet, f *progressFlag) {
	fs.Var(f, "progress", "show progress on stderr (default: when stderr is a terminal and without --json); --progress=false hides it")
}

// progressInterval is how often the progress line is redrawn at most.
const progressInterval = 200 * time.Millisecond

// progress is a status line on stderr, redrawn in place ("\r", then the
// line, then erase to the end of the line). A disabled progress prints
// nothing.
type progress struct {
	w       io.Writer
	enabled bool
	began   time.Time
	last    time.Time // of the last redraw
	drawn   bool
}

// newProgress returns the progress line of a command writing JSON or not.
func newProgress(stderr io.Writer, f progressFlag, jsonOutput bool) *progress {
	enabled := f.on
	if !f.set {
		enabled = !jsonOutput && isTerminal(stderr)
	}
	return &progress{w: stderr, enabled: enabled, began: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// update redraws the line, at most every progressInterval.
func (p *progress) update(format string, args ...any) {
	if !p.enabled {
		return
	}
	now := time.Now()
	if p.drawn && now.Sub(p.last) < progressInterval {
		return
	}
	p.last, p.drawn = now, true
	fmt.Fprintf(p.w, "\r"+format+"\x1b[K", args...)
}

// done draws the final line and ends it.
func (p *progress) done(format string, args ...any) {
	if !p.enabled {
		return
	}
	fmt.Fprintf(p.w, "\r"+format+"\x1b[K\n", args...)
	p.drawn = false
}

// clear erases the line, so that output on the same terminal starts on a
// clean line.
func (p *progress) clear() {
	if p.enabled && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// elapsed is the time since the operation began.
func (p *progress) elapsed() time.Duration { return time.Since(p.began) }

// rate formats n per second since the operation began.
func (p *progress) rate(n int64) string {
	s := p.elapsed().Seconds()
	if s <= 0 {
		return "-/s"
	}
	return count(int64(float64(n)/s)) + "/s"
}

// count formats n with thousands separators: 1,234,567.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
