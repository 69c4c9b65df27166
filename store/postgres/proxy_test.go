package postgres_test

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/tcpproxy"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
	"github.com/gomonster/monster/store/storetest"
)

// proxyURL returns base with the proxy's address as host.
func proxyURL(t *testing.T, p *tcpproxy.Proxy, base string) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Host = p.Addr()
	return u.String()
}

func serverAddr(t *testing.T, base string) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	return host
}

// A database that is down at start, goes down mid-run and comes back:
// Open returns a clear error while it is unreachable; the rest is the
// shared outage scenario (storetest.RunOutage): Log fails clearly, the
// consumer pauses and resumes on its own, and no acknowledged event or
// saved checkpoint is lost.
func TestDatabaseDownAndBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := requireServer(t)
	schema := newSchema(t)
	p := tcpproxy.Start(t, serverAddr(t, base))
	viaProxy := proxyURL(t, p, base)

	p.Cut()
	_, err := postgres.Open(ctx, viaProxy, testOptions(schema))
	require.Error(t, err, "Open with the database down")
	require.True(t, strings.HasPrefix(err.Error(), "monster: postgres open "), err.Error())
	require.Contains(t, err.Error(), "cannot connect")
	p.Restore()

	storetest.RunOutage(t, storetest.Outage{
		ViaProxy: openStoreAt(t, viaProxy, testOptions(schema)),
		Direct:   func(t *testing.T) store.Store { return openStore(t, schema) },
		Cut:      p.Cut,
		Restore:  p.Restore,
	})
}
