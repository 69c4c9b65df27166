package mongodb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

func init() {
	open := func(ctx context.Context, url string) (store.Store, error) {
		s, err := Open(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	monster.RegisterStore("mongodb", open)
	monster.RegisterStore("mongodb+srv", open)
}

// DefaultDatabase is the database used when the URL names none.
const DefaultDatabase = "monster"

// DefaultPrefix starts the name of every event type's collection.
const DefaultPrefix = "events_"

// Names of the store's own collections.
const (
	collLog              = "monster_log"
	collCounters         = "monster_counters"
	collCounterVersions  = "monster_counter_versions"
	collConsumerVersions = "monster_consumer_versions"
	collIdempotency      = "monster_idempotency"
	collConsumers        = "monster_consumers"
	collMembers          = "monster_members"
	collDeadLetters      = "monster_dead_letters"
)

// headID is the _id of the counters document that holds the committed
// position, the append lock and the per-type counts.
const headID = "log"

// Options configures Open. A nil *Options means all defaults.
type Options struct {
	// Database overrides the database named in the URL's path (default
	// [DefaultDatabase] when the URL names none).
	Database string
	// Prefix starts the name of every event type's collection: the type
	// with dots replaced by underscores follows it. Default [DefaultPrefix],
	// so user.bought_shirt lives in events_user_bought_shirt.
	Prefix string
	// WriteConcern for every write. Default: majority, journaled.
	WriteConcern *writeconcern.WriteConcern
	// AppendLease is how long an appender holds the store's append lock
	// before another process may take it over (after a crash). Default 10s.
	AppendLease time.Duration
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o *Options) WithDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Prefix == "" {
		out.Prefix = DefaultPrefix
	}
	if out.WriteConcern == nil {
		journal := true
		out.WriteConcern = &writeconcern.WriteConcern{W: "majority", Journal: &journal}
	}
	if out.AppendLease <= 0 {
		out.AppendLease = 10 * time.Second
	}
	return out
}

// Store is a MongoDB store. Open one with [Open] or with monster.Open and
// a mongodb:// URL.
type Store struct {
	url    string
	opts   Options
	client *mongo.Client
	db     *mongo.Database

	log, counters, idem, consumers, members, dead *mongo.Collection

	head *versioned[headDoc]     // the log's head, key headID
	cons *versioned[consumerDoc] // consumers, keyed by name

	// appendMu serialises this process's appends (a buffered channel so
	// that waiting honours ctx); the lock document serialises processes.
	appendMu chan struct{}

	typeMu    sync.Mutex
	typeReady map[string]bool // type collections whose index exists

	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

var errClosed = errors.New("monster: mongodb: store is closed")

// Open connects to the MongoDB server (or FerretDB) at url, a mongodb://
// connection string whose path names the database, and prepares the
// store's collections and indexes.
func Open(ctx context.Context, url string, o *Options) (*Store, error) {
	opts := o.WithDefaults()
	cs, err := connstring.ParseAndValidate(url)
	if err != nil {
		return nil, fmt.Errorf("monster: mongodb: bad URL: %w", err)
	}
	dbName := opts.Database
	if dbName == "" {
		dbName = cs.Database
	}
	if dbName == "" {
		dbName = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(url).SetWriteConcern(opts.WriteConcern))
	if err != nil {
		return nil, fmt.Errorf("monster: mongodb: connect: %w", err)
	}
	s := &Store{
		url:       url,
		opts:      opts,
		client:    client,
		db:        client.Database(dbName),
		appendMu:  make(chan struct{}, 1),
		typeReady: map[string]bool{},
	}
	s.log = s.db.Collection(collLog)
	s.counters = s.db.Collection(collCounters)
	s.idem = s.db.Collection(collIdempotency)
	s.consumers = s.db.Collection(collConsumers)
	s.members = s.db.Collection(collMembers)
	s.dead = s.db.Collection(collDeadLetters)
	s.head = newVersioned[headDoc](s.db.Collection(collCounterVersions), s.counters)
	s.cons = newVersioned[consumerDoc](s.db.Collection(collConsumerVersions), s.consumers)
	if err := s.setup(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// setup creates the head document and the indexes, idempotently.
func (s *Store) setup(ctx context.Context) error {
	_, err := s.counters.InsertOne(ctx, bson.D{{Key: "_id", Value: "format"}, {Key: "format", Value: 1}})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("monster: mongodb: open: %w", err)
	}
	var format struct {
		Format int `bson:"format"`
	}
	if err := s.counters.FindOne(ctx, id("format")).Decode(&format); err != nil {
		return fmt.Errorf("monster: mongodb: open: %w", err)
	}
	if format.Format != 1 {
		return fmt.Errorf("monster: mongodb: database %q has format %d: %w", s.db.Name(), format.Format, store.ErrNotAStore)
	}
	indexes := []struct {
		coll  *mongo.Collection
		model mongo.IndexModel
	}{
		{s.log, mongo.IndexModel{Keys: bson.D{{Key: "id", Value: 1}}, Options: options.Index().SetUnique(true).SetName("id_unique")}},
		{s.members, mongo.IndexModel{Keys: bson.D{{Key: "c", Value: 1}, {Key: "m", Value: 1}}, Options: options.Index().SetName("consumer_member")}},
		{s.head.records, mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}, {Key: "v", Value: 1}}, Options: options.Index().SetName("key_v")}},
		{s.cons.records, mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}, {Key: "v", Value: 1}}, Options: options.Index().SetName("key_v")}},
		{s.dead, mongo.IndexModel{Keys: bson.D{{Key: "c", Value: 1}, {Key: "pos", Value: 1}}, Options: options.Index().SetName("consumer_pos")}},
	}
	for _, ix := range indexes {
		if _, err := ix.coll.Indexes().CreateOne(ctx, ix.model); err != nil {
			return fmt.Errorf("monster: mongodb: create index on %s: %w", ix.coll.Name(), err)
		}
	}
	return nil
}

// URL returns the connection string the store was opened with.
func (s *Store) URL() string { return s.url }

// Database returns the name of the store's database.
func (s *Store) Database() string { return s.db.Name() }

// CollectionName returns the name of the collection that keeps events of
// type typ: the prefix, then the type with dots replaced by underscores.
func (s *Store) CollectionName(typ string) string {
	return s.opts.Prefix + strings.ReplaceAll(typ, ".", "_")
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("monster: mongodb: close: %w", err)
	}
	return nil
}

// check fails when the store is closed or ctx is done.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("monster: mongodb: %s: %w", what, err)
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// nanos converts t to Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func id(v any) bson.D { return bson.D{{Key: "_id", Value: v}} }
