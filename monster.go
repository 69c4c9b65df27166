package monster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gomonster/monster/internal/groupcommit"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
	"github.com/gomonster/monster/store/sqlite"
)

// DefaultPath is the store Open uses when given an empty path.
const DefaultPath = "monster.db"

// Options configures a Monster. The zero value (or nil) gives the defaults
// each field's comment states.
type Options struct {
	// DisallowUndeclared rejects events of types not declared with Declare,
	// with an error matching ErrUndeclared. Default false: undeclared types
	// are accepted (pymonster's allow_undeclared_events = True).
	DisallowUndeclared bool

	// MaxEventSize caps an event's encoded data plus metadata, in bytes.
	// Default 1 MiB.
	MaxEventSize int

	// Verbose prints a line for every logged event, like pymonster:
	// "[Event][user.bought_shirt] {"user":"gordon","quantity":2}". Default
	// false.
	Verbose bool

	// Output receives the Verbose lines, written one call per line under a
	// lock. Default os.Stdout.
	Output io.Writer

	// Logger receives operational messages: retries, dead letters, store
	// errors, lease changes. Default slog.Default().
	Logger *slog.Logger

	// LogMiddleware wraps every Log call, outermost first; see UseLog.
	LogMiddleware []LogMiddleware

	// Eager makes Log run every matching consumer's handler before it
	// returns, once, in the calling goroutine, and return their errors
	// (joined, as *HandlerError). Consumers do not run in the background.
	// For tests; see package monstertest. Default false.
	Eager bool

	// PollInterval is how often a consumer looks for events logged by other
	// processes when the store cannot notify it. Events logged through this
	// Monster wake its consumers at once. Default 50ms.
	PollInterval time.Duration

	// LeaseTTL is how long a process's claim on a consumer partition lasts
	// without renewal; a crashed process's partitions move to the survivors
	// after it. Leases are renewed every LeaseTTL/3. It also bounds the
	// store calls a consumer makes to renew leases and save checkpoints
	// (registering gets at least 5s, reading at least 30s): a call stuck on
	// a dead connection is given up and tried again. Default 10s.
	LeaseTTL time.Duration

	// CheckpointInterval is how often consumers save their progress. A
	// crash redelivers at most the events handled in the last interval.
	// Default 100ms.
	CheckpointInterval time.Duration

	// ShutdownTimeout bounds how long Run waits for in-flight handlers when
	// its context ends. Default 30s.
	ShutdownTimeout time.Duration

	// MemberID names this process among the members sharing consumers.
	// Default: hostname, pid and a random suffix.
	MemberID string
}

// WithDefaults returns a copy of o (which may be nil) with every unset
// field set to its default.
func (o *Options) WithDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.MaxEventSize <= 0 {
		out.MaxEventSize = 1 << 20
	}
	if out.Output == nil {
		out.Output = os.Stdout
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.PollInterval <= 0 {
		out.PollInterval = 50 * time.Millisecond
	}
	if out.LeaseTTL <= 0 {
		out.LeaseTTL = 10 * time.Second
	}
	if out.CheckpointInterval <= 0 {
		out.CheckpointInterval = 100 * time.Millisecond
	}
	if out.ShutdownTimeout <= 0 {
		out.ShutdownTimeout = 30 * time.Second
	}
	if out.MemberID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		out.MemberID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return out
}

// Monster logs events into a store and runs consumers over them. It is safe
// for concurrent use. Create one with Open or New.
type Monster struct {
	store store.Store
	opts  Options
	log   LogFunc // the middleware chain around m.prepare

	committer *groupcommit.Committer

	wake wakeup

	outputMu sync.Mutex // serialises Verbose lines

	// consumerOps serialises StartConsumer, StopConsumer and
	// RemoveConsumer, so that a consumer's run has finished (and left its
	// group) before another run of it starts in this process.
	consumerOps sync.Mutex

	mu        sync.Mutex
	declared  map[string]declaredType
	consumers map[string]*consumerDef
	running   *runner // non-nil between Start and Stop
	closed    bool
}

// StoreOpener opens a store from a URL; see RegisterStore.
type StoreOpener func(ctx context.Context, url string) (store.Store, error)

var (
	registryMu sync.Mutex
	registry   = map[string]StoreOpener{}
)

// RegisterStore makes Open accept URLs with the given scheme ("postgres")
// and open them with open. Store packages call it from init, so importing a
// store package for its side effect makes its URLs work, as with
// database/sql drivers. It panics if the scheme is registered twice.
func RegisterStore(scheme string, open StoreOpener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("monster: store scheme registered twice: " + scheme)
	}
	registry[scheme] = open
}

func init() {
	RegisterStore("sqlite", func(ctx context.Context, url string) (store.Store, error) {
		return sqlite.Open(ctx, strings.TrimPrefix(url, "sqlite://"), nil)
	})
	RegisterStore("memory", func(ctx context.Context, url string) (store.Store, error) {
		return memstore.New(), nil
	})
}

// Open opens the store at pathOrURL and returns a Monster on it. A plain
// path (or "" for DefaultPath, ./monster.db) is an embedded SQLite file,
// created if missing; "sqlite://PATH" says the same explicitly;
// "memory://" is an in-memory store for tests. Other schemes (postgres://,
// mongodb://, nats://) work once their store package is imported.
//
// It returns an error matching ErrUnknownStore for an unregistered scheme
// and ErrNotAStore for a file that exists but is not a Monster store.
func Open(ctx context.Context, pathOrURL string, opts *Options) (*Monster, error) {
	st, err := OpenStore(ctx, pathOrURL)
	if err != nil {
		return nil, err
	}
	return New(st, opts), nil
}

func registeredSchemes() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	var out []string
	for s := range registry {
		out = append(out, s+"://")
	}
	sort.Strings(out)
	return out
}

// New returns a Monster on an already open store. The Monster owns
// the store from then on: Close closes it.
func New(st store.Store, opts *Options) *Monster {
	m := &Monster{
		store:     st,
		opts:      opts.WithDefaults(),
		declared:  map[string]declaredType{},
		consumers: map[string]*consumerDef{},
	}
	m.wake.init()
	m.log = m.prepare
	for i := len(m.opts.LogMiddleware) - 1; i >= 0; i-- {
		m.log = m.opts.LogMiddleware[i](m.log)
	}
	m.committer = groupcommit.New(groupcommit.Config{
		Append:    st.Append,
		Committed: m.printEvents,
		Released:  m.wake.broadcast,
	})
	return m
}

// Store returns the underlying store, for tools and store-specific
// features.
func (m *Monster) Store() store.Store { return m.store }

// Close stops consumers started with Start (waiting up to
// Options.ShutdownTimeout for in-flight handlers), waits for pending Log
// calls, and closes the store.
func (m *Monster) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
	defer cancel()
	stopErr := m.Stop(ctx)
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	// Log calls already queued are committed; later ones get ErrClosed.
	m.committer.Close()
	return errors.Join(stopErr, m.store.Close())
}

// wakeup lets any number of goroutines wait for the next event logged in
// this process.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) init() { w.ch = make(chan struct{}) }

// wait returns a channel closed at the next broadcast.
func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *wakeup) broadcast() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}
