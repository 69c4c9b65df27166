// Package reliability holds Monster's reliability suite (issue 13): tests
// that run a store under faults and count what survives. See
// docs/reliability.md.
//
// This file is the power-loss part's test file system, CutFS: a FUSE
// loopback over a backing directory that keeps written-but-unsynced file
// data apart, so that a "cut" can drop it as a power loss would.
package reliability

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// CutFS is a loopback file system that models a disk with a volatile
// write cache.
//
// What it models: the data of a regular file, once opened, lives in
// memory; reads and writes (and truncation) go to that copy, and only
// fsync (fdatasync) writes it to the backing file and syncs that. Cut drops
// every copy and makes every later call fail with EIO, so the backing
// directory then holds exactly what was synced before the cut.
//
// What it does not model: directory operations (create, unlink, rename,
// mkdir) go to the backing directory at once and count as synced; a cut
// never tears a write in half or reorders writes within a sync (everything
// unsynced is dropped, all or nothing per file, which is the strongest
// loss a disk that honours fsync can cause, but not a torn sector); data
// written through a shared mmap (SQLite's -shm index) reaches the file
// system whenever the kernel writes the page back, as on a real disk.
// File locks are the kernel's own (not forwarded), so only processes on
// this machine can share the mount.
type CutFS struct {
	backing string

	// mu orders syncs against Cut: a sync either reaches the backing file
	// before the cut or fails.
	mu    sync.Mutex
	files map[uint64]*fileState // by inode number, while this mount lives
	dead  atomic.Bool

	syncs   atomic.Int64
	dbSyncs atomic.Int64 // syncs of *.db files: SQLite checkpoints
}

// fileState is one file's data as the file system's users see it.
type fileState struct {
	mu      sync.Mutex
	backing *os.File
	data    []byte
	dirty   map[int64]struct{} // pages of data written since the last sync
	resized bool               // length changed since the last sync
	isDB    bool               // a *.db file (not a -wal, -shm or -journal)
}

const cutPage = 4096

// NewCutFS returns a CutFS over the directory backing.
func NewCutFS(backing string) *CutFS {
	return &CutFS{backing: backing, files: map[uint64]*fileState{}}
}

// Mount mounts the file system at dir. The caller must Unmount the
// returned server.
func (c *CutFS) Mount(dir string) (*fuse.Server, error) {
	root := &fs.LoopbackRoot{Path: c.backing}
	var st syscall.Stat_t
	if err := syscall.Stat(c.backing, &st); err != nil {
		return nil, err
	}
	root.Dev = uint64(st.Dev)
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &cutNode{LoopbackNode: fs.LoopbackNode{RootData: r}, c: c}
	}
	root.RootNode = root.NewNode(root, nil, "", &st)
	zero := time.Duration(0)
	return fs.Mount(dir, root.RootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:        "cutfs",
			Name:          "cutfs",
			DisableXAttrs: true,
			// mount(2) itself (the tests run as root): no fusermount needed.
			DirectMount: true,
		},
		AttrTimeout:     &zero,
		EntryTimeout:    &zero,
		NegativeTimeout: &zero,
	})
}

// Cut is the power loss: every file's unsynced data is dropped, and every
// later operation fails with EIO.
func (c *CutFS) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead.Store(true)
	for ino, st := range c.files {
		st.mu.Lock()
		st.backing.Close()
		st.data, st.dirty = nil, nil
		st.mu.Unlock()
		delete(c.files, ino)
	}
}

// Syncs is the number of file syncs that reached the backing directory.
func (c *CutFS) Syncs() int64 { return c.syncs.Load() }

// DBSyncs is the number of those syncs that were of a *.db file, which
// for SQLite in WAL mode are checkpoints (and the store's creation).
func (c *CutFS) DBSyncs() int64 { return c.dbSyncs.Load() }

// state returns the in-memory state of the file with inode number ino at
// path (relative to the root), loading it from the backing file.
func (c *CutFS) state(ino uint64, rel string) (*fileState, syscall.Errno) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead.Load() {
		return nil, syscall.EIO
	}
	if st, ok := c.files[ino]; ok {
		return st, 0
	}
	f, err := os.OpenFile(filepath.Join(c.backing, rel), os.O_RDWR, 0)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		f.Close()
		return nil, fs.ToErrno(err)
	}
	st := &fileState{backing: f, data: data, dirty: map[int64]struct{}{}, isDB: filepath.Ext(rel) == ".db"}
	c.files[ino] = st
	return st, 0
}

// known returns the state of ino if the file has one.
func (c *CutFS) known(ino uint64) *fileState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[ino]
}

func (c *CutFS) forget(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.files[ino]; ok {
		st.mu.Lock()
		st.backing.Close()
		st.mu.Unlock()
		delete(c.files, ino)
	}
}

// sync writes st's unsynced data to its backing file and syncs it.
func (c *CutFS) sync(st *fileState) syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead.Load() {
		return syscall.EIO
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.data == nil && st.dirty == nil {
		return syscall.EIO // dropped by forget
	}
	size := int64(len(st.data))
	for p := range st.dirty {
		off := p * cutPage
		if off >= size {
			continue
		}
		end := min(off+cutPage, size)
		if _, err := st.backing.WriteAt(st.data[off:end], off); err != nil {
			return fs.ToErrno(err)
		}
	}
	if st.resized || len(st.dirty) > 0 {
		if err := st.backing.Truncate(size); err != nil {
			return fs.ToErrno(err)
		}
	}
	if err := st.backing.Sync(); err != nil {
		return fs.ToErrno(err)
	}
	clear(st.dirty)
	st.resized = false
	c.syncs.Add(1)
	if st.isDB {
		c.dbSyncs.Add(1)
	}
	return 0
}

func (st *fileState) size() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return uint64(len(st.data))
}

func (st *fileState) truncate(size int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if size < int64(len(st.data)) {
		st.data = st.data[:size]
	} else {
		st.data = append(st.data, make([]byte, size-int64(len(st.data)))...)
	}
	st.resized = true
}

type cutNode struct {
	fs.LoopbackNode
	c *CutFS
}

var (
	_ fs.NodeOpener    = (*cutNode)(nil)
	_ fs.NodeCreater   = (*cutNode)(nil)
	_ fs.NodeGetattrer = (*cutNode)(nil)
	_ fs.NodeSetattrer = (*cutNode)(nil)
	_ fs.NodeLookuper  = (*cutNode)(nil)
	_ fs.NodeUnlinker  = (*cutNode)(nil)
)

func (n *cutNode) alive() syscall.Errno {
	if n.c.dead.Load() {
		return syscall.EIO
	}
	return 0
}

func (n *cutNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.alive(); e != 0 {
		return nil, e
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		if st := n.c.known(ch.StableAttr().Ino); st != nil {
			out.Attr.Size = st.size()
		}
	}
	return ch, errno
}

func (n *cutNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if e := n.alive(); e != 0 {
		return nil, 0, e
	}
	st, errno := n.c.state(n.StableAttr().Ino, n.Path(nil))
	if errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_TRUNC != 0 {
		st.truncate(0)
	}
	return &cutFile{c: n.c, st: st}, 0, 0
}

func (n *cutNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := n.alive(); e != 0 {
		return nil, nil, 0, e
	}
	ch, fh, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if r, ok := fh.(fs.FileReleaser); ok {
		r.Release(ctx)
	}
	st, errno := n.c.state(ch.StableAttr().Ino, filepath.Join(n.Path(nil), name))
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if flags&syscall.O_TRUNC != 0 {
		st.truncate(0)
	}
	out.Attr.Size = st.size()
	return ch, &cutFile{c: n.c, st: st}, 0, 0
}

func (n *cutNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := n.alive(); e != 0 {
		return e
	}
	if errno := n.LoopbackNode.Getattr(ctx, nil, out); errno != 0 {
		return errno
	}
	if st := n.c.known(n.StableAttr().Ino); st != nil {
		out.Attr.Size = st.size()
		out.Attr.Blocks = (out.Attr.Size + 511) / 512
	}
	return 0
}

func (n *cutNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.alive(); e != 0 {
		return e
	}
	if size, ok := in.GetSize(); ok {
		st, errno := n.c.state(n.StableAttr().Ino, n.Path(nil))
		if errno != 0 {
			return errno
		}
		st.truncate(int64(size))
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := n.LoopbackNode.Setattr(ctx, nil, in, out); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, nil, out)
}

func (n *cutNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.alive(); e != 0 {
		return e
	}
	if ch := n.GetChild(name); ch != nil {
		n.c.forget(ch.StableAttr().Ino)
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

// cutFile is an open file: it reads and writes its file's in-memory data.
type cutFile struct {
	c  *CutFS
	st *fileState
}

var (
	_ fs.FileReader    = (*cutFile)(nil)
	_ fs.FileWriter    = (*cutFile)(nil)
	_ fs.FileFsyncer   = (*cutFile)(nil)
	_ fs.FileFlusher   = (*cutFile)(nil)
	_ fs.FileGetattrer = (*cutFile)(nil)
)

func (f *cutFile) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.c.dead.Load() {
		return nil, syscall.EIO
	}
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if off >= int64(len(f.st.data)) {
		return fuse.ReadResultData(nil), 0
	}
	n := copy(buf, f.st.data[off:])
	return fuse.ReadResultData(buf[:n]), 0
}

func (f *cutFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.c.dead.Load() {
		return 0, syscall.EIO
	}
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if f.st.dirty == nil {
		return 0, syscall.EIO
	}
	end := off + int64(len(data))
	if end > int64(len(f.st.data)) {
		f.st.data = append(f.st.data, make([]byte, end-int64(len(f.st.data)))...)
		f.st.resized = true
	}
	copy(f.st.data[off:], data)
	for p := off / cutPage; p*cutPage < end; p++ {
		f.st.dirty[p] = struct{}{}
	}
	return uint32(len(data)), 0
}

func (f *cutFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return f.c.sync(f.st)
}

// Flush (close) does not sync, as on a real disk.
func (f *cutFile) Flush(ctx context.Context) syscall.Errno {
	if f.c.dead.Load() {
		return syscall.EIO
	}
	return 0
}

func (f *cutFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if f.c.dead.Load() {
		return syscall.EIO
	}
	var st syscall.Stat_t
	f.st.mu.Lock()
	err := syscall.Fstat(int(f.st.backing.Fd()), &st)
	f.st.mu.Unlock()
	if err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	out.Attr.Size = f.st.size()
	out.Attr.Blocks = (out.Attr.Size + 511) / 512
	return 0
}
