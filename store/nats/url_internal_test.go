package nats

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		servers []string
		query   url.Values
	}{
		{"nats://127.0.0.1:4222", []string{"nats://127.0.0.1:4222"}, url.Values{}},
		{"nats://a:4222,b:4223,c:4224?replicas=3&prefix=orders",
			[]string{"nats://a:4222", "nats://b:4223", "nats://c:4224"},
			url.Values{"replicas": {"3"}, "prefix": {"orders"}}},
		{"nats://user:p%40ss@a:4222,b:4222/", []string{"nats://user:p%40ss@a:4222", "nats://user:p%40ss@b:4222"}, url.Values{}},
		{"nats://s3cr3t@a:4222", []string{"nats://s3cr3t@a:4222"}, url.Values{}},
		{"nats://a:1, nats://b:2", []string{"nats://a:1", "nats://b:2"}, url.Values{}},
	} {
		servers, q, err := parseURL(tc.raw)
		require.NoError(t, err, tc.raw)
		require.Equal(t, tc.servers, servers, tc.raw)
		require.Equal(t, tc.query, q, tc.raw)
	}
	for _, raw := range []string{"nats://", "nats://,,", "nats://user:pw@", "postgres://a"} {
		_, _, err := parseURL(raw)
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), "pw", "credentials stay out of errors")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "nats://xxxxx@a:4222", redactURL("nats://user:secret@a:4222"))
	require.Equal(t, "a:4222,b:4222", redactServers([]string{"nats://a:4222", "nats://b:4222"}))
	require.Equal(t, "xxxxx@a:4222", redactServers([]string{"nats://tok@a:4222"}))
}

func TestAtLeast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"2.12.0", true}, {"2.12.1", true}, {"2.15.3", true}, {"3.0.0", true}, {"2.14.0-beta.1", true},
		{"2.11.9", false}, {"2.9.10", false}, {"1.99.99", false}, {"", false},
	} {
		require.Equal(t, tc.want, atLeast(tc.v, MinServerVersion), tc.v)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	in := store.NewEvent{ID: "id-1", Type: "user.bought_shirt", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Key: "gordon", Data: []byte(`{"quantity":2}`), Meta: []byte("{\"trace\":\"a\r\nb\"}"), IdempotencyKey: "buy-1"}
	var out store.Event
	require.NoError(t, decodeEnvelope(encodeEnvelope(&in), &out))
	require.Equal(t, in.Type, out.Type)
	require.Equal(t, in.ID, out.ID)
	require.Equal(t, in.Key, out.Key)
	require.Equal(t, in.IdempotencyKey, out.IdempotencyKey)
	require.Equal(t, in.Meta, out.Meta)
	require.Equal(t, in.Data, out.Data)
	require.True(t, in.Time.Equal(out.Time))
	require.False(t, isEnvelope([]byte("1")), "a marker is not an envelope")
	require.Error(t, decodeEnvelope([]byte{envelopeV1, 200}, &out), "a truncated envelope")
}
