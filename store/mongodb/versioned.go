package mongodb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// versioned keeps small pieces of state (the log's head, each consumer)
// as an insert-only sequence of versions: version v+1 of a key is a
// document with a unique _id, inserted only by a writer that read version
// v as the latest. Inserting a document with an _id that exists fails on
// every server, FerretDB included, so the unique _id is the one
// compare-and-set the store relies on: two writers that read the same
// version cannot both write the next one. (FerretDB v1 evaluates the
// filter of an update or findAndModify apart from the write, so a
// conditional update is not a compare-and-set there.)
//
// A cache document per key (the latest version known to its last writer,
// possibly stale) lets readers start near the end; they then probe
// forward by _id, galloping, to the real latest version.
type versioned[T any] struct {
	records *mongo.Collection
	cache   *mongo.Collection

	mu    sync.Mutex
	known map[string]knownVersion // latest version this process has seen
}

// knownVersion is a version seen by this process, its state encoded (so
// that callers cannot change it).
type knownVersion struct {
	v     int64
	state []byte
}

type record[T any] struct {
	ID    string `bson:"_id"`
	Key   string `bson:"key"`
	V     int64  `bson:"v"`
	At    int64  `bson:"at"`
	State T      `bson:"state"`
}

// keepVersions and keepAge bound how many old versions survive: older
// ones are deleted once both limits are passed. A writer that read a
// version and stalls for longer than keepAge before writing the next could
// otherwise write into a deleted slot.
const (
	keepVersions = 1024
	keepAge      = time.Hour
)

func newVersioned[T any](records, cache *mongo.Collection) *versioned[T] {
	return &versioned[T]{records: records, cache: cache, known: map[string]knownVersion{}}
}

func recordID(key string, v int64) string { return fmt.Sprintf("%s\x00%020d", key, v) }

func (x *versioned[T]) exists(ctx context.Context, key string, v int64) (bool, error) {
	if v <= 0 {
		return true, nil
	}
	// A find by _id alone: FerretDB pushes it down to its SQL backend
	// (a count would be an aggregation that scans the collection).
	err := x.records.FindOne(ctx, id(recordID(key, v)), options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// latest returns the latest version of key and its state; v is 0 when the
// key has no version. When this process has seen the latest version, it
// costs one point read (that the next version does not exist).
func (x *versioned[T]) latest(ctx context.Context, key string) (int64, T, error) {
	var zero T
	x.mu.Lock()
	k, seen := x.known[key]
	x.mu.Unlock()
	lo := k.v
	if !seen {
		var c record[T]
		err := x.cache.FindOne(ctx, id(key)).Decode(&c)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
		case err != nil:
			return 0, zero, err
		default:
			lo = c.V
		}
	}
	start := lo
	// Gallop forward from lo, which exists, to a version that does not.
	step := int64(1)
	hi := lo + step
	for {
		ok, err := x.exists(ctx, key, hi)
		if err != nil {
			return 0, zero, err
		}
		if !ok {
			break
		}
		lo, step = hi, step*2
		hi = lo + step
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := x.exists(ctx, key, mid)
		if err != nil {
			return 0, zero, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, zero, nil
	}
	if seen && lo == start {
		var state T
		if err := bson.Unmarshal(k.state, &state); err != nil {
			return 0, zero, err
		}
		return lo, state, nil
	}
	var r record[T]
	if err := x.records.FindOne(ctx, id(recordID(key, lo))).Decode(&r); err != nil {
		return 0, zero, err
	}
	x.remember(key, lo, r.State)
	return lo, r.State, nil
}

// remember records that version v of key, with state, exists.
func (x *versioned[T]) remember(key string, v int64, state T) {
	b, err := bson.Marshal(state)
	if err != nil {
		return
	}
	x.mu.Lock()
	if v > x.known[key].v {
		x.known[key] = knownVersion{v: v, state: b}
	}
	x.mu.Unlock()
}

// put writes version v of key. It reports false, with no error, when
// version v exists already: another writer got there first.
func (x *versioned[T]) put(ctx context.Context, key string, v int64, state T) (bool, error) {
	now := time.Now().UnixNano()
	r := record[T]{ID: recordID(key, v), Key: key, V: v, At: now, State: state}
	if _, err := x.records.InsertOne(ctx, r); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return false, err
	}
	x.remember(key, v, state)
	// Best effort from here: the write is done. The cache document is
	// only where other processes start looking: refresh it now and then.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if v <= 2 || v%8 == 0 {
		r.ID = key
		_, _ = x.cache.ReplaceOne(bg, id(key), r, options.Replace().SetUpsert(true))
	}
	if v%256 == 0 && v > keepVersions {
		_, _ = x.records.DeleteMany(bg, bson.D{
			{Key: "key", Value: key},
			{Key: "v", Value: bson.D{{Key: "$lt", Value: v - keepVersions}}},
			{Key: "at", Value: bson.D{{Key: "$lt", Value: now - int64(keepAge)}}},
		})
	}
	return true, nil
}

// errUnchanged, returned by an update function, ends update without
// writing a version.
var errUnchanged = errors.New("unchanged")

// update reads the latest state of key, computes the next with fn and
// writes it as the next version, again until no other writer comes first.
// exists is false when the key has no version yet.
func (x *versioned[T]) update(ctx context.Context, key string, fn func(state *T, exists bool) error) (T, error) {
	for {
		v, state, err := x.latest(ctx, key)
		if err != nil {
			return state, err
		}
		if err := fn(&state, v > 0); err != nil {
			if errors.Is(err, errUnchanged) {
				return state, nil
			}
			return state, err
		}
		ok, err := x.put(ctx, key, v+1, state)
		if err != nil || ok {
			return state, err
		}
		if err := ctx.Err(); err != nil {
			return state, err
		}
	}
}
