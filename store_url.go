package monster

import (
	"context"
	"fmt"
	"strings"

	"github.com/gomonster/monster/store"
)

// OpenStore opens the store that Open would open for pathOrURL, without
// a Monster on it: for tools, such as the daemon, that wrap the store before
// handing it to New. The caller owns the store and closes it.
//
// It returns an error matching ErrUnknownStore for an unregistered scheme
// and ErrNotAStore for a file that exists but is not a Monster store.
func OpenStore(ctx context.Context, pathOrURL string) (store.Store, error) {
	pathOrURL, scheme := storeScheme(pathOrURL)
	registryMu.Lock()
	open, ok := registry[scheme]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q: scheme %q is not one of %s (import the store's package to register it)",
			ErrUnknownStore, pathOrURL, scheme, strings.Join(registeredSchemes(), ", "))
	}
	return open(ctx, pathOrURL)
}

var existingRegistry = map[string]StoreOpener{} // under registryMu

// RegisterExistingStore gives OpenExistingStore the way to open URLs of
// scheme: open must open only a store that exists, failing with an error
// wrapping ErrNoStore (and creating nothing: no file, schema or table)
// where there is none. Store packages that can tell call it from init next
// to RegisterStore. It panics if the scheme is registered twice.
func RegisterExistingStore(scheme string, open StoreOpener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := existingRegistry[scheme]; dup {
		panic("monster: existing store scheme registered twice: " + scheme)
	}
	existingRegistry[scheme] = open
}

// OpenExistingStore is OpenStore for a store that must exist already:
// where there is none (a missing or empty file, a missing PostgreSQL
// schema) it fails with an error wrapping ErrNoStore, such as `monster: no
// store at "nosuch.db"`, and creates nothing. It is for tools that read or
// change a store but have no business creating one (the command line's
// events, consumers, reset...), so that a mistyped path leaves no empty
// store behind. A scheme whose package registered no such opener with
// RegisterExistingStore (memory://, mongodb://) is opened as OpenStore
// opens it.
func OpenExistingStore(ctx context.Context, pathOrURL string) (store.Store, error) {
	pathOrURL, scheme := storeScheme(pathOrURL)
	registryMu.Lock()
	open, ok := existingRegistry[scheme]
	registryMu.Unlock()
	if !ok {
		return OpenStore(ctx, pathOrURL)
	}
	return open(ctx, pathOrURL)
}

// storeScheme returns pathOrURL, DefaultPath if empty, and its scheme:
// "sqlite" for a plain path.
func storeScheme(pathOrURL string) (string, string) {
	if pathOrURL == "" {
		pathOrURL = DefaultPath
	}
	if i := strings.Index(pathOrURL, "://"); i > 0 {
		return pathOrURL, pathOrURL[:i]
	}
	return pathOrURL, "sqlite"
}
