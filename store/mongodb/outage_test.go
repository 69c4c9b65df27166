package mongodb_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/tcpproxy"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/mongodb"
	"github.com/gomonster/monster/store/mongodb/ferrettest"
	"github.com/gomonster/monster/store/storetest"
)

// A database that is down at start, goes down mid-run and comes back (a
// TCP proxy between the store and FerretDB, cut and restored): Open
// returns a clear error while it is unreachable; the rest is the shared
// outage scenario (storetest.RunOutage): Log fails clearly and by itself
// (serverSelectionTimeoutMS, well inside a 30 s context), the consumer
// pauses and resumes on its own, and no acknowledged event or saved
// checkpoint is lost.
func TestDatabaseDownAndBack(t *testing.T) {
	ctx := t.Context()
	direct := ferrettest.Database(t, ferrettest.Start(t))
	u, err := url.Parse(direct)
	require.NoError(t, err)
	p := tcpproxy.Start(t, u.Host)
	u.Host = p.Addr()
	q := u.Query()
	// How long an operation waits for an unreachable server before it
	// fails (the driver's default is 30s).
	q.Set("serverSelectionTimeoutMS", "1000")
	u.RawQuery = q.Encode()
	viaProxy := u.String()
	opts := &mongodb.Options{AppendLease: 2 * time.Second}

	p.Cut()
	_, err = mongodb.Open(ctx, viaProxy, opts)
	require.Error(t, err, "Open with the database down")
	require.True(t, strings.HasPrefix(err.Error(), "monster: mongodb: open: "), err.Error())
	p.Restore()

	s, err := mongodb.Open(ctx, viaProxy, opts)
	require.NoError(t, err)
	storetest.RunOutage(t, storetest.Outage{
		ViaProxy:   s,
		Direct:     func(t *testing.T) store.Store { return openStore(t, direct) },
		Cut:        p.Cut,
		Restore:    p.Restore,
		LogTimeout: 30 * time.Second,
	})
}
