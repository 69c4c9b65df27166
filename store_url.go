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
	if pathOrURL == "" {
		pathOrURL = DefaultPath
	}
	scheme := "sqlite"
	if i := strings.Index(pathOrURL, "://"); i > 0 {
		scheme = pathOrURL[:i]
	}
	registryMu.Lock()
	open, ok := registry[scheme]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q: scheme %q is not one of %s (import the store's package to register it)",
			ErrUnknownStore, pathOrURL, scheme, strings.Join(registeredSchemes(), ", "))
	}
	return open(ctx, pathOrURL)
}
