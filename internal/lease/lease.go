// Package lease keeps a consumer's partition leases in one process: it
// heartbeats, renews the partitions held, claims free or expired ones up
// to a fair share of the live members, hands over those above the share
// (draining them first, so that no event runs in two members at once),
// and saves checkpoints, which only the holder of a partition may write.
//
// The partitions themselves, with their queues, are a dispatch.Dispatcher:
// a Keeper decides and talks to the store; the Dispatcher holds the state.
package lease

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/gomonster/monster/internal/dispatch"
	"github.com/gomonster/monster/store"
)

// ErrTimeout is reported when a lease renewal did not complete within the
// lease TTL: the leases it took had expired already.
var ErrTimeout = errors.New("monster: lease renewal did not complete within the lease TTL")

// Store is the part of the store a Keeper uses.
type Store interface {
	Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error)
	Consumer(ctx context.Context, name string) (store.ConsumerInfo, error)
	Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error)
	Release(ctx context.Context, p store.ReleaseParams) error
	SaveCheckpoints(ctx context.Context, p store.SaveCheckpointsParams) error
	Leave(ctx context.Context, p store.LeaveParams) error
}

// Config configures a Keeper.
type Config struct {
	// Consumer and Member name the consumer and this process. Required.
	Consumer, Member string
	// Store keeps the leases. Required.
	Store Store
	// Partitions holds this process's partitions. Required.
	Partitions *dispatch.Dispatcher
	// TTL is how long a lease lasts without renewal; leases are renewed
	// every TTL/3, and each store call is given up after TTL. Required.
	TTL time.Duration
	// RetryInterval is the first delay before a failed renewal is tried
	// again; it doubles up to TTL/3. Required.
	RetryInterval time.Duration
	// CheckpointInterval is how often Run saves checkpoints. Required.
	CheckpointInterval time.Duration
	// Warn, when set, is told of failures (which are retried).
	Warn func(what string, err error)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Keeper keeps one consumer's leases in this process. Its methods are
// called from one goroutine (Run's), except where they say otherwise.
type Keeper struct {
	cfg Config
}

// New returns a Keeper; it holds nothing until the first Refresh.
func New(cfg Config) *Keeper {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keeper{cfg: cfg}
}

func (k *Keeper) warn(what string, err error) {
	if k.cfg.Warn != nil {
		k.cfg.Warn(what, err)
	}
}

// CallContext bounds one store call of the lease loop: a call stuck on a
// dead connection is given up after the lease TTL (when the leases it
// could renew would have expired anyway), so that the next attempt, on a
// new connection, can renew them.
func (k *Keeper) CallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, k.cfg.TTL)
}

// Job is work Run does periodically besides leases and checkpoints; the
// zero Job is none.
type Job struct {
	Every time.Duration
	Do    func(ctx context.Context)
}

// Run refreshes the leases at once and every TTL/3 (a refresh that fails
// is tried again sooner, backing off from RetryInterval to TTL/3), saves
// checkpoints every CheckpointInterval (refreshing at once when a lease
// turns out to be lost), and runs job, all from one goroutine, until ctx
// is done.
func (k *Keeper) Run(ctx context.Context, job Job) {
	ttl := k.cfg.TTL
	leaseTicker := time.NewTicker(ttl / 3)
	defer leaseTicker.Stop()
	flushTicker := time.NewTicker(k.cfg.CheckpointInterval)
	defer flushTicker.Stop()
	var jobTick <-chan time.Time
	if job.Do != nil {
		t := time.NewTicker(job.Every)
		defer t.Stop()
		jobTick = t.C
	}
	// A member that could not claim its partitions has nothing to do until
	// it does: retry soon rather than at the next tick.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := k.cfg.RetryInterval
	refresh := func() {
		if k.Refresh(ctx) {
			backoff = k.cfg.RetryInterval
			retry.Stop()
			return
		}
		retry.Reset(backoff) // Go 1.23+ timers: no stale tick after Reset
		backoff = min(2*backoff, ttl/3)
	}
	refresh()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseTicker.C:
			refresh()
		case <-retry.C:
			refresh()
		case <-flushTicker.C:
			if errors.Is(k.Flush(ctx), store.ErrLeaseLost) {
				refresh()
			}
		case <-jobTick:
			job.Do(ctx)
		}
	}
}

// FairShare is how many of total partitions each of members should hold:
// total divided by members, rounded up (members below 1 count as 1).
func FairShare(total, members int) int {
	members = max(members, 1)
	return (total + members - 1) / members
}

// HandOver returns the held partitions to hand over: those draining
// already and, while more than share would remain, the highest-numbered
// others.
func HandOver(held []dispatch.Held, share int) []int {
	sorted := append([]dispatch.Held(nil), held...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Partition > sorted[j].Partition })
	extra := len(sorted) - share
	for _, h := range sorted {
		if h.Draining {
			extra--
		}
	}
	var out []int
	for _, h := range sorted {
		if h.Draining {
			out = append(out, h.Partition)
		} else if extra > 0 {
			out = append(out, h.Partition)
			extra--
		}
	}
	return out
}

// ToClaim returns keep followed by the partitions worth claiming, in the
// order of all, until there are share: those free, already member's, or
// whose lease expired before now. held are those this process holds
// already (not claimed again here).
func ToClaim(keep []int, held map[int]bool, all []store.PartitionInfo, share int, member string, now time.Time) []int {
	want := keep
	for _, p := range all {
		if len(want) >= share {
			break
		}
		if held[p.Partition] {
			continue
		}
		if p.Owner == "" || p.Owner == member || p.LeaseExpires.Before(now) {
			want = append(want, p.Partition)
		}
	}
	return want
}

// Refresh heartbeats, renews the partitions held, claims free ones up to a
// fair share and releases idle ones above it. It reports whether the
// refresh went through. ctx is the runner's; each store call gets
// CallContext.
func (k *Keeper) Refresh(ctx context.Context) bool {
	stop := ctx
	ctx, cancel := k.CallContext(stop)
	defer cancel()
	st, name, member := k.cfg.Store, k.cfg.Consumer, k.cfg.Member
	now := k.cfg.Now()
	expires := now.Add(k.cfg.TTL)
	members, err := st.Heartbeat(ctx, store.HeartbeatParams{Consumer: name, Member: member, Expires: expires, Now: now})
	var info store.ConsumerInfo
	if err == nil {
		info, err = st.Consumer(ctx, name)
	}
	if err != nil {
		if stop.Err() == nil {
			k.warn("renewing leases", err)
		}
		// The reader and workers drop the partitions if this goes on past
		// the leases' expiry (the Dispatcher checks the lease time).
		return false
	}
	share := FairShare(len(info.Partitions), len(members))

	// Above the fair share, hand partitions over: drain them (read no more
	// events for them and start none of those read ahead) and release each
	// once its running handlers return, so a member that joins during a
	// backlog gets work at once, and no event runs in two members at once.
	parts := k.cfg.Partitions
	held := parts.Held()
	release := parts.Drain(HandOver(held, share))
	released := map[int]bool{}
	for _, n := range release {
		released[n] = true
	}
	heldSet := map[int]bool{}
	var keep []int
	for _, h := range held {
		heldSet[h.Partition] = true
		if !released[h.Partition] {
			keep = append(keep, h.Partition)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(keep)))
	want := ToClaim(keep, heldSet, info.Partitions, share, member, now)

	if len(release) > 0 {
		_ = k.Flush(stop)
		parts.Lose(release)
		if err := st.Release(ctx, store.ReleaseParams{Consumer: name, Member: member, Partitions: release}); err != nil {
			k.warn("releasing partitions", err)
		}
	}
	got, err := st.Claim(ctx, store.ClaimParams{Consumer: name, Member: member, Partitions: want, Expires: expires, Now: now})
	if err != nil {
		if stop.Err() == nil {
			k.warn("claiming partitions", err)
		}
		return false
	}
	if k.cfg.Now().After(expires) {
		// The refresh took longer than the leases it took: they have
		// expired already. Try again with a new expiry.
		if stop.Err() == nil {
			k.warn("claiming partitions", ErrTimeout)
		}
		return false
	}
	parts.Apply(got, expires)
	return true
}

// Flush saves the checkpoints that moved. ctx is the runner's; the store
// call gets CallContext. It returns the store's error (wrapping
// store.ErrLeaseLost when a partition moved).
func (k *Keeper) Flush(ctx context.Context) error {
	pr := k.cfg.Partitions.Progress()
	if len(pr.Checkpoints) == 0 {
		return nil
	}
	callCtx, cancel := k.CallContext(ctx)
	defer cancel()
	if err := k.cfg.Store.SaveCheckpoints(callCtx, store.SaveCheckpointsParams{Consumer: k.cfg.Consumer, Member: k.cfg.Member, Checkpoints: pr.Checkpoints}); err != nil {
		if ctx.Err() == nil {
			k.warn("saving checkpoints", err)
		}
		return err
	}
	k.cfg.Partitions.Saved(pr)
	return nil
}

// Leave saves the checkpoints and leaves the consumer's group, releasing
// every partition, whatever ctx says of the runner: both are short and
// save redeliveries. It is called once Run and the workers have returned.
func (k *Keeper) Leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = k.Flush(ctx)
	if err := k.cfg.Store.Leave(ctx, store.LeaveParams{Consumer: k.cfg.Consumer, Member: k.cfg.Member}); err != nil {
		k.warn("leaving the consumer group", err)
	}
}
