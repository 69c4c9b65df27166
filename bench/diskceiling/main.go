// Command diskceiling measures the most that any durable Log could reach on
// this machine's disk with a given number of synchronous callers: each
// caller hands a 200-byte record to one flusher and waits until it is
// written and synced; the flusher writes every waiting record in one write
// and syncs, as a group commit does, with no database, no encoding and no
// index. Whatever a store adds per commit (SQLite's or PostgreSQL's own
// work) can only lower these figures.
//
// Two flushers are measured: "gather" lets the callers that the last sync
// released join the next group before it is written (as Monster's group
// committer does), "pipeline" starts the next write and sync at once with
// whoever is waiting.
//
//	go run ./bench/diskceiling                    # scratch file in the current folder
//	go run ./bench/diskceiling -dir /var/lib/monster -callers 64
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "folder for the scratch file (put it on the disk the store uses)")
	callers := flag.Int("callers", 64, "concurrent callers, each waiting for its own record")
	total := flag.Int("n", 200000, "records per measurement")
	size := flag.Int("size", 200, "bytes per record")
	flag.Parse()
	if *callers < 1 || *total < *callers || *size < 1 {
		fmt.Fprintln(os.Stderr, "diskceiling: need -callers ≥ 1, -n ≥ -callers and -size ≥ 1")
		os.Exit(2)
	}
	path := filepath.Join(*dir, fmt.Sprintf("diskceiling-%d.tmp", os.Getpid()))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskceiling:", err)
		os.Exit(1)
	}
	scratch = path
	defer os.Remove(path)
	defer f.Close()
	// Like the stores' WAL, the file is preallocated and overwritten in a
	// cycle, so a sync flushes data, not a growing file's metadata.
	const fileSize = 8 << 20
	if err := f.Truncate(fileSize); err != nil {
		fail(err)
	}
	if err := f.Sync(); err != nil {
		fail(err)
	}
	fmt.Printf("%s, %d-byte records, fsync after each group\n", path, *size)
	for _, r := range []struct {
		name    string
		callers int
		gather  bool
	}{
		{"1 caller", 1, false},
		{fmt.Sprintf("%d callers, gather", *callers), *callers, true},
		{fmt.Sprintf("%d callers, pipeline", *callers), *callers, false},
	} {
		n := *total
		if r.callers == 1 {
			n = min(n, 2000) // one sync per record: keep it short
		}
		res := measure(f, fileSize, r.callers, n, *size, r.gather)
		fmt.Printf("%-22s %9.0f records/s  %5.1f records/sync  %4.0f µs/sync\n", r.name+":", res.rate, res.perSync, res.syncMicros)
	}
}

// scratch is the scratch file, removed on the way out.
var scratch string

// fail reports err, removes the scratch file and exits.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "diskceiling:", err)
	if scratch != "" {
		os.Remove(scratch)
	}
	os.Exit(1)
}

type result struct {
	rate, perSync, syncMicros float64
}

// group is the records waiting for one write and sync.
type group struct {
	buf  []byte
	n    int
	done chan struct{}
}

func measure(f *os.File, fileSize int64, callers, total, size int, gather bool) result {
	var (
		mu      sync.Mutex
		ready   = sync.NewCond(&mu)
		cur     = &group{done: make(chan struct{})}
		stopped bool
	)
	syncs := 0
	var syncTime time.Duration
	flusherDone := make(chan struct{})
	go func() {
		var off int64
		for {
			mu.Lock()
			for cur.n == 0 && !stopped {
				ready.Wait()
			}
			if cur.n == 0 && stopped {
				mu.Unlock()
				close(flusherDone)
				return
			}
			if gather {
				// Let the callers the last sync released join, as long
				// as more keep arriving.
				for y := 0; y < 50 && cur.n < callers; y++ {
					mu.Unlock()
					runtime.Gosched()
					mu.Lock()
				}
			}
			g := cur
			cur = &group{done: make(chan struct{})}
			mu.Unlock()
			if off+int64(len(g.buf)) > fileSize {
				off = 0
			}
			start := time.Now()
			_, err := f.WriteAt(g.buf, off)
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				// The callers of this and later groups would wait
				// forever: a measurement has no use for a failed disk.
				fail(fmt.Errorf("write and sync: %w", err))
			}
			syncTime += time.Since(start)
			syncs++
			off += int64(len(g.buf))
			close(g.done)
		}
	}()
	record := make([]byte, size)
	per := total / callers
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for range per {
				mu.Lock()
				g := cur
				g.buf = append(g.buf, record...)
				g.n++
				ready.Signal()
				mu.Unlock()
				<-g.done
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	mu.Lock()
	stopped = true
	ready.Signal()
	mu.Unlock()
	<-flusherDone
	n := per * callers
	return result{
		rate:       float64(n) / elapsed.Seconds(),
		perSync:    float64(n) / float64(syncs),
		syncMicros: float64(syncTime.Microseconds()) / float64(syncs),
	}
}
