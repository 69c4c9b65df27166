package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// faultStore is a memory store whose appends fail with a chosen error,
// for the daemon's answers to store failures. Open one with the URL
// faultStoreURL gives.
type faultStore struct {
	store.Store
	mu  sync.Mutex
	err error
}

func (f *faultStore) setAppendError(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *faultStore) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.Store.Append(ctx, events)
}

var (
	faultStoresMu sync.Mutex
	faultStores   = map[string]*faultStore{}
)

func init() {
	monster.RegisterStore("faulty", func(ctx context.Context, url string) (store.Store, error) {
		faultStoresMu.Lock()
		defer faultStoresMu.Unlock()
		f, ok := faultStores[url]
		if !ok {
			return nil, fmt.Errorf("monster: no fault store %q", url)
		}
		return f, nil
	})
}

// faultStoreURL returns a URL that opens a new faultStore for t.
func faultStoreURL(t *testing.T) (string, *faultStore) {
	t.Helper()
	url := "faulty://" + strings.ReplaceAll(t.Name(), "/", "_")
	f := &faultStore{Store: memstore.New()}
	faultStoresMu.Lock()
	faultStores[url] = f
	faultStoresMu.Unlock()
	t.Cleanup(func() {
		faultStoresMu.Lock()
		delete(faultStores, url)
		faultStoresMu.Unlock()
	})
	return url, f
}

// setupFaulty starts a server on a new faultStore and returns it, the
// store and the server's log.
func setupFaulty(t *testing.T) (*bundle, *faultStore, *lockedBuffer) {
	t.Helper()
	url, fs := faultStoreURL(t)
	logs := &lockedBuffer{}
	b := startLogging(t, Config{Store: url, PollInterval: Duration(10 * time.Millisecond)}, t.TempDir(),
		slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil)))
	return b, fs, logs
}
