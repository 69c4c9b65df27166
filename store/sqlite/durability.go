package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// Durability, and why the sync happens outside SQLite's write lock.
//
// With synchronous=FULL, SQLite syncs the WAL inside COMMIT, while it holds
// the file's write lock: no other transaction can insert anything during
// the sync. A group commit then costs insert time plus sync time, and
// concurrent Log calls split into two groups that take turns, each waiting
// out the other's sync.
//
// The store's writer connection runs with synchronous=NORMAL instead (in
// WAL mode: no sync at commit) and syncs the WAL itself, with fdatasync on
// the -wal file, after the commit and after releasing the write lock. Every
// write method returns only after that sync, so a returned Append is as
// durable as with FULL; meanwhile the next transaction inserts its events,
// and one sync often covers several commits. Connections of DB() (the
// application's LogTx transactions) keep synchronous=FULL, because their
// commits are not the store's to follow with a sync.
//
// The price is that a commit is visible to other connections before it is
// synced. Read and Head therefore never return a position that is not yet
// known durable: when they see one, they sync the WAL first (a WAL sync
// covers every frame written to it before, whichever process wrote it). So
// no consumer handles an event that a power cut could still take back.
type walSync struct {
	f *os.File // the -wal file, opened only to sync it

	mu         sync.Mutex   // one fdatasync at a time
	commits    atomic.Int64 // commits made by this store
	synced     atomic.Int64 // commits known durable
	durablePos atomic.Int64 // positions known durable
	headPos    atomic.Int64 // highest position this store committed
}

// openWALSync opens the store's WAL file for syncing and switches the
// writer connection to synchronous=NORMAL. If anything fails the writer
// keeps synchronous=FULL and w is nil: every commit syncs inside SQLite.
func openWALSync(ctx context.Context, path string, writeConn *sql.Conn) *walSync {
	f, err := os.Open(path + "-wal")
	if err != nil {
		return nil
	}
	if _, err := writeConn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		f.Close()
		return nil
	}
	return &walSync{f: f}
}

// committed records a commit by this store's writer; highest is the highest
// event position it stored (0 for none). It returns the commit's sequence
// number for afterCommit.
func (w *walSync) committed(highest int64) int64 {
	if w == nil {
		return 0
	}
	for {
		cur := w.headPos.Load()
		if highest <= cur || w.headPos.CompareAndSwap(cur, highest) {
			break
		}
	}
	return w.commits.Add(1)
}

// afterCommit makes commit seq durable, unless a sync that began after it
// already did.
func (w *walSync) afterCommit(seq int64) error {
	if w == nil || w.synced.Load() >= seq {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.synced.Load() >= seq {
		return nil
	}
	return w.syncLocked(0)
}

// beforeVisible makes position pos, committed by anyone, durable before a
// reader hands it out.
func (w *walSync) beforeVisible(pos int64) error {
	if w == nil || w.durablePos.Load() >= pos {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.durablePos.Load() >= pos {
		return nil
	}
	return w.syncLocked(pos)
}

// syncLocked syncs the WAL. Everything committed before the call starts is
// durable when it returns: this store's commits so far, and pos.
func (w *walSync) syncLocked(pos int64) error {
	commits, head := w.commits.Load(), max(w.headPos.Load(), pos)
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("monster: sqlite: sync the WAL: %w", err)
	}
	w.synced.Store(max(w.synced.Load(), commits))
	w.durablePos.Store(max(w.durablePos.Load(), head))
	return nil
}

func (w *walSync) close() {
	if w != nil {
		w.f.Close()
	}
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
