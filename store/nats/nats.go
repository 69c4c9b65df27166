package nats

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

func init() {
	monster.RegisterStore("nats", func(ctx context.Context, url string) (store.Store, error) {
		s, err := Open(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// DefaultPrefix names the store's streams and subjects unless
// [Options.Prefix] or the URL's prefix parameter says otherwise.
const DefaultPrefix = "monster"

// MinServerVersion is the oldest nats-server the store works with: atomic
// batch publish, which makes an Append all-or-none, arrived in 2.12.
const MinServerVersion = "2.12.0"

// ServerDefaultMaxBatch is nats-server's default limit on the messages of
// one atomic batch (jetstream { limits { max_batch_size } }). An Append
// needs two messages per event, three for an event with an idempotency
// key, so the default admits Appends of 333 to 500 events.
const ServerDefaultMaxBatch = 1000

// Options configures Open. A nil *Options means all defaults; a field left
// zero takes the URL's parameter of the same meaning, else its default.
type Options struct {
	// Prefix names the store's streams (<Prefix>_events, <Prefix>_state)
	// and subjects (<Prefix>.ev.<type>, ...), so that several stores share
	// one NATS account. One to 32 letters, digits, '_' and '-'. Default:
	// the URL's prefix parameter, else [DefaultPrefix].
	Prefix string
	// Replicas is the number of servers each stream is replicated on when
	// Open creates it: 1 on a single server (an event survives what that
	// server's disk survives), 3 on a cluster (an acknowledged event is on
	// a majority). An existing stream keeps its own replica count. Default:
	// the URL's replicas parameter, else 1.
	Replicas int
	// CredentialsFile is a NATS credentials file (a user JWT and its
	// seed). Default: the URL's creds parameter, else none. A user and
	// password, or a token, go in the URL: nats://user:pass@host:4222 or
	// nats://token@host:4222.
	CredentialsFile string
	// RequestTimeout bounds each request to the servers when the caller's
	// context has no earlier deadline; a publish that times out is reported
	// as an ambiguous commit. Default: 10s.
	RequestTimeout time.Duration
	// MaxBatchMessages, when set, makes an Append that needs more messages
	// in its atomic batch fail before anything is sent; set it to the
	// servers' max_batch_size. Default: the URL's max_batch parameter,
	// else 0: the server refuses a batch over its limit, which the Append
	// reports, having stored nothing.
	MaxBatchMessages int
	// NATSOptions are passed to nats.Connect after the store's own (TLS,
	// a custom dialer, ...), except that the store keeps its own
	// DisconnectErrHandler, which ends the calls waiting on a connection
	// that dropped.
	NATSOptions []natsgo.Option
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// withURL fills o's zero fields from the URL's parameters, then defaults.
func (o *Options) withURL(q url.Values) (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Prefix == "" {
		out.Prefix = q.Get("prefix")
	}
	if out.Prefix == "" {
		out.Prefix = DefaultPrefix
	}
	intParam := func(name string, dst *int) error {
		v := q.Get(name)
		if *dst != 0 || v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("monster: nats open: URL parameter %s=%q is not a positive integer", name, v)
		}
		*dst = n
		return nil
	}
	if err := intParam("replicas", &out.Replicas); err != nil {
		return out, err
	}
	if err := intParam("max_batch", &out.MaxBatchMessages); err != nil {
		return out, err
	}
	if out.Replicas == 0 {
		out.Replicas = 1
	}
	if out.CredentialsFile == "" {
		out.CredentialsFile = q.Get("creds")
	}
	if out.RequestTimeout == 0 {
		out.RequestTimeout = 10 * time.Second
	}
	switch {
	case !prefixPattern.MatchString(out.Prefix):
		return out, fmt.Errorf("monster: nats open: prefix %q must be 1 to 32 letters, digits, '_' and '-'", out.Prefix)
	case out.Replicas < 1 || out.Replicas > 5:
		return out, fmt.Errorf("monster: nats open: %d replicas, want 1 to 5", out.Replicas)
	case out.MaxBatchMessages != 0 && out.MaxBatchMessages < 3:
		return out, fmt.Errorf("monster: nats open: MaxBatchMessages %d is below 3 (one event with an idempotency key)", out.MaxBatchMessages)
	case out.RequestTimeout < time.Millisecond:
		return out, fmt.Errorf("monster: nats open: RequestTimeout %v is below 1ms", out.RequestTimeout)
	}
	return out, nil
}

// Store is a Monster store in NATS JetStream. It implements [store.Store]
// and [store.Notifier]; see the package documentation.
type Store struct {
	nc *natsgo.Conn
	// appendConn carries Appends' batches, apart from reads and consumer
	// updates: the server handles a connection's messages one after
	// another, and on one node it stages each atomic batch for a few
	// milliseconds; on the same connection a consumer's read waited
	// behind every batch.
	appendConn *natsgo.Conn
	js         jetstream.JetStream
	opts       Options
	servers    string // for error messages, without credentials
	readLoss   *lossWatch
	appendLoss *lossWatch
	names      names
	// replicated is set when the events stream has more than one replica:
	// reads served by a follower are then checked with the leader.
	replicated bool
	closed     atomic.Bool
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// names are the streams and subjects of one store.
type names struct {
	prefix      string
	events      string // the events stream
	state       string // the consumers' state stream
	eventSubj   string // <prefix>.ev. ; + type
	idSubj      string // <prefix>.id. ; + encoded event ID
	idemSubj    string // <prefix>.ik. ; + encoded idempotency key
	stateSubj   string // <prefix>.st.
	wakeSubject string
}

func newNames(prefix string) names {
	return names{
		prefix:      prefix,
		events:      prefix + "_events",
		state:       prefix + "_state",
		eventSubj:   prefix + ".ev.",
		idSubj:      prefix + ".id.",
		idemSubj:    prefix + ".ik.",
		stateSubj:   prefix + ".st.",
		wakeSubject: prefix + ".wake",
	}
}

// Open connects to the NATS servers of rawURL and returns the store kept
// under the prefix, creating its streams if they do not exist.
//
// rawURL is nats://host:port[,host:port...][?prefix=&replicas=&creds=&max_batch=]
// with optional user:password@ or token@ before the first host. Open
// fails, with an error naming the servers, when none can be reached, when
// the server is older than [MinServerVersion], when JetStream is not
// enabled or has no quorum, and, wrapping [store.ErrNotAStore], when a
// stream of the store's names exists with another configuration; it
// changes nothing that is already stored.
func Open(ctx context.Context, rawURL string, opts *Options) (*Store, error) {
	servers, query, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	o, err := opts.withURL(query)
	if err != nil {
		return nil, err
	}
	redacted := redactServers(servers)
	nopts := []natsgo.Option{
		natsgo.Name("monster"),
		natsgo.MaxReconnects(-1),
		// When a node dies, its clients move to another one soon: calls
		// wait for the reconnection (up to the request timeout).
		natsgo.ReconnectWait(250 * time.Millisecond),
		natsgo.RetryOnFailedConnect(false),
	}
	if deadline, ok := ctx.Deadline(); ok {
		nopts = append(nopts, natsgo.Timeout(max(time.Until(deadline), time.Millisecond)))
	}
	if o.CredentialsFile != "" {
		nopts = append(nopts, natsgo.UserCredentials(o.CredentialsFile))
	}
	nopts = append(nopts, o.NATSOptions...)
	s := &Store{opts: o, servers: redacted, names: newNames(o.Prefix), readLoss: newLossWatch(), appendLoss: newLossWatch()}
	onLoss := func(w *lossWatch) natsgo.Option {
		return natsgo.DisconnectErrHandler(func(*natsgo.Conn, error) { w.lost() })
	}
	nc, err := natsgo.Connect(strings.Join(servers, ","), append(nopts, onLoss(s.readLoss))...)
	if err != nil {
		return nil, fmt.Errorf("monster: nats open %s: cannot connect: %w", redacted, err)
	}
	s.nc = nc
	if err := s.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	s.appendConn, err = natsgo.Connect(strings.Join(servers, ","), append(nopts, natsgo.Name("monster-append"), onLoss(s.appendLoss))...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("monster: nats open %s: cannot connect: %w", redacted, err)
	}
	return s, nil
}

func (s *Store) setup(ctx context.Context) error {
	if v := s.nc.ConnectedServerVersion(); !atLeast(v, MinServerVersion) {
		return fmt.Errorf("monster: nats open %s: nats-server %s is older than %s, the oldest this store supports (atomic batch publish)",
			s.servers, v, MinServerVersion)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("monster: nats open %s: %w", s.servers, err)
	}
	s.js = js
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("monster: nats open %s: JetStream is not enabled on the server or for this account", s.servers)
		}
		return fmt.Errorf("monster: nats open %s: JetStream does not answer (no quorum, or not enabled?): %w", s.servers, err)
	}
	events, err := s.ensureStream(ctx, s.eventsConfig())
	if err != nil {
		return err
	}
	s.replicated = events.Replicas > 1
	_, err = s.ensureStream(ctx, s.stateConfig())
	return err
}

// storeMetadata marks the streams Open creates, so that Open can tell them
// from streams someone else made under the same names.
const (
	metaKind    = "monster_store"
	metaVersion = "monster_store_version"
	formatV1    = "1"
)

func (s *Store) eventsConfig() jetstream.StreamConfig {
	n := s.names
	return jetstream.StreamConfig{
		Name:        n.events,
		Description: "Monster event log (" + n.prefix + ")",
		Subjects:    []string{n.eventSubj + ">", n.idSubj + ">", n.idemSubj + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
		MaxMsgs:     -1, MaxBytes: -1, MaxAge: 0, MaxMsgsPerSubject: -1, MaxMsgSize: -1,
		Discard:            jetstream.DiscardOld,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Metadata:           map[string]string{metaKind: "events", metaVersion: formatV1},
	}
}

func (s *Store) stateConfig() jetstream.StreamConfig {
	n := s.names
	return jetstream.StreamConfig{
		Name:        n.state,
		Description: "Monster consumers' state (" + n.prefix + ")",
		Subjects:    []string{n.stateSubj + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
		MaxMsgs:     -1, MaxBytes: -1, MaxAge: 0, MaxMsgSize: -1,
		// Only the latest version of each key is kept; compare-and-set is
		// on the subject's last sequence.
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		// Reads go to the leader: a follower may lag behind a write.
		AllowDirect: false,
		Metadata:    map[string]string{metaKind: "state", metaVersion: formatV1},
	}
}

// ensureStream creates the stream, or checks that the existing one is the
// store's, and returns its configuration.
func (s *Store) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	st, err := s.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = s.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it first, perhaps differently.
			st, err = s.js.Stream(ctx, want.Name)
		}
	}
	if err != nil {
		return want, fmt.Errorf("monster: nats open %s: stream %q: %w", s.servers, want.Name, err)
	}
	got := st.CachedInfo().Config
	if err := sameStream(got, want); err != nil {
		return got, fmt.Errorf("monster: nats open %s: stream %q exists with another configuration (%v): not this store's: %w",
			s.servers, want.Name, err, store.ErrNotAStore)
	}
	return got, nil
}

// sameStream compares what the store relies on; replicas and limits an
// operator may change are not compared.
func sameStream(got, want jetstream.StreamConfig) error {
	switch {
	case got.Metadata[metaKind] != want.Metadata[metaKind]:
		return fmt.Errorf("metadata %s=%q, want %q", metaKind, got.Metadata[metaKind], want.Metadata[metaKind])
	case got.Metadata[metaVersion] != want.Metadata[metaVersion]:
		return fmt.Errorf("format version %q, want %q", got.Metadata[metaVersion], want.Metadata[metaVersion])
	case strings.Join(got.Subjects, " ") != strings.Join(want.Subjects, " "):
		return fmt.Errorf("subjects %q, want %q", got.Subjects, want.Subjects)
	case got.Retention != want.Retention:
		return fmt.Errorf("retention %v, want %v", got.Retention, want.Retention)
	case got.Storage != want.Storage:
		return fmt.Errorf("storage %v, want %v", got.Storage, want.Storage)
	case got.AllowDirect != want.AllowDirect:
		return fmt.Errorf("allow_direct %v, want %v", got.AllowDirect, want.AllowDirect)
	case got.AllowAtomicPublish != want.AllowAtomicPublish:
		return fmt.Errorf("allow_atomic %v, want %v", got.AllowAtomicPublish, want.AllowAtomicPublish)
	case got.MaxMsgsPerSubject != want.MaxMsgsPerSubject:
		return fmt.Errorf("max_msgs_per_subject %d, want %d", got.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	case got.MaxAge != 0 || got.MaxMsgs > 0 || got.MaxBytes > 0:
		return fmt.Errorf("limits (max_age %v, max_msgs %d, max_bytes %d) that would delete events or state", got.MaxAge, got.MaxMsgs, got.MaxBytes)
	}
	return nil
}

// parseURL splits nats://[auth@]host:port[,host:port...][?query] into
// server URLs for nats.Connect (each with the auth) and the query.
func parseURL(raw string) ([]string, url.Values, error) {
	rest, ok := strings.CutPrefix(raw, "nats://")
	if !ok {
		return nil, nil, fmt.Errorf("monster: nats open: URL %q does not start with nats://", redactURL(raw))
	}
	hosts, rawQuery, _ := strings.Cut(rest, "?")
	hosts = strings.TrimSuffix(hosts, "/")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, nil, fmt.Errorf("monster: nats open: URL %q: bad query: %w", redactURL(raw), err)
	}
	auth := ""
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		auth, hosts = hosts[:i+1], hosts[i+1:]
	}
	var servers []string
	for h := range strings.SplitSeq(hosts, ",") {
		h = strings.TrimSpace(h)
		h = strings.TrimPrefix(h, "nats://")
		if h == "" {
			continue
		}
		servers = append(servers, "nats://"+auth+h)
	}
	if len(servers) == 0 {
		return nil, nil, fmt.Errorf("monster: nats open: URL %q names no server (want nats://host:port[,host:port...])", redactURL(raw))
	}
	return servers, q, nil
}

func redactServers(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = strings.TrimPrefix(redactURL(s), "nats://")
	}
	return strings.Join(out, ",")
}

// redactURL hides credentials, which error messages must not show.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 && !strings.Contains(rest[:i], "/") {
		rest = "xxxxx@" + rest[i+1:]
	}
	return scheme + "://" + rest
}

// atLeast reports whether version v (such as "2.12.1" or "2.14.0-beta")
// is at least min.
func atLeast(v, min string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		s, _, _ = strings.Cut(s, "-")
		for i, part := range strings.SplitN(s, ".", 3) {
			out[i], _ = strconv.Atoi(part)
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

// Prefix returns the prefix of the store's streams and subjects.
func (s *Store) Prefix() string { return s.names.prefix }

// Conn returns the store's NATS connection, for tests and tools.
func (s *Store) Conn() *natsgo.Conn { return s.nc }

// errConnectionLost ends the calls in flight on a connection that drops:
// their answers will never come, and waiting for the request timeout
// stalled consumers for that long when a node died.
var errConnectionLost = errors.New("connection to the NATS server lost")

// lossWatch gives each call a context that is cancelled if its connection
// drops while the call waits.
type lossWatch struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func newLossWatch() *lossWatch {
	w := &lossWatch{}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// lost ends the calls waiting on the connection.
func (w *lossWatch) lost() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	w.ctx, w.cancel = context.WithCancel(context.Background())
}

func (w *lossWatch) current() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

// callContext bounds ctx by the request timeout, and ends it if the
// store's main connection drops.
func (s *Store) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.callContextOn(ctx, s.readLoss)
}

func (s *Store) callContextOn(ctx context.Context, w *lossWatch) (context.Context, context.CancelFunc) {
	var c context.Context
	var cancel context.CancelFunc
	if d, ok := ctx.Deadline(); ok && time.Until(d) < s.opts.RequestTimeout {
		c, cancel = context.WithCancel(ctx)
	} else {
		c, cancel = context.WithTimeout(ctx, s.opts.RequestTimeout)
	}
	c, cancelCause := context.WithCancelCause(c)
	stop := context.AfterFunc(w.current(), func() { cancelCause(errConnectionLost) })
	return c, func() { stop(); cancelCause(nil); cancel() }
}

// callError words the error of a call made with a context from
// callContext, saying when the connection dropped under it.
func callError(c context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(c), errConnectionLost) {
		return fmt.Errorf("%w (%v)", errConnectionLost, err)
	}
	return err
}

// check fails when the store is closed or ctx is done.
func (s *Store) check(ctx context.Context, op string) error {
	if s.closed.Load() {
		return store.ClosedError("nats", op)
	}
	if err := ctx.Err(); err != nil {
		return store.OpError(ctx, "nats", op, err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return store.ClosedError("nats", "close")
	}
	s.appendConn.Close()
	s.nc.Close()
	return nil
}

// JetStream returns the store's JetStream context, for tests and tools.
func (s *Store) JetStream() jetstream.JetStream { return s.js }
