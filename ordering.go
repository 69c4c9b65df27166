package monster

// This file is how a consumer's events are spread over its partitions and
// ordered: by the event's key, or by the consumer's ConsumerOptions.OrderBy,
// under the partitioning stored when the consumer was first registered.

import (
	"fmt"

	"github.com/gomonster/monster/internal/dispatch"
	"github.com/gomonster/monster/store"
)

// partitioning returns the partitioning the consumer's options ask for,
// stored if the consumer is new.
func (d *consumerDef) partitioning() store.Partitioning {
	if d.opts.OrderBy != nil {
		return store.PartitionByOrderKey
	}
	return store.PartitionByKeyOrID
}

// router returns the router of the partitioning stored for the consumer,
// which info describes. A consumer keeps the partitioning it was first
// registered with: one registered before partitionings were stored keeps
// partitioning keyless events by type, since moving an event to another
// partition could skip it (that partition's checkpoint may be past it).
// Whether the consumer orders by OrderBy cannot change for the same reason:
// that is an error matching store.ErrConflict, as is a partitioning this
// version does not know.
// A panic in OrderBy is logged to log.
func (d *consumerDef) router(info store.ConsumerInfo, log *slogLogger) (*dispatch.Router, error) {
	stored := info.Partitioning
	r := &dispatch.Router{Partitions: len(info.Partitions), Scheme: stored}
	if len(info.Partitions) == 0 {
		r.Partitions = d.opts.Partitions
	}
	switch {
	case !stored.Known():
		return nil, store.Errorf(store.ErrConflict,
			"monster: consumer %q is stored with partitioning %q, which this version of monster does not know (a newer version registered it): upgrade, or declare a consumer of a new name",
			d.name, string(stored))
	case stored == store.PartitionByOrderKey && d.opts.OrderBy == nil:
		return nil, store.Errorf(store.ErrConflict,
			"monster: consumer %q is registered ordering its events by its OrderBy function (partitioning %q) and is now declared without OrderBy; "+
				"its events cannot move to other partitions without some being skipped: set OrderBy again, declare a consumer of a new name, or delete the stored consumer (Store().DeleteConsumer) to start it afresh",
			d.name, stored.String())
	case stored != store.PartitionByOrderKey && d.opts.OrderBy != nil:
		return nil, store.Errorf(store.ErrConflict,
			"monster: consumer %q is registered ordering its events by their key (partitioning %q) and is now declared with OrderBy; "+
				"its events cannot move to other partitions without some being skipped: remove OrderBy, declare a consumer of a new name, or delete the stored consumer (Store().DeleteConsumer) to start it afresh",
			d.name, stored.String())
	}
	if stored == store.PartitionByOrderKey {
		r.OrderKey = func(e store.Event) string { return d.orderKey(e, log) }
	}
	return r, nil
}

// orderKey runs the consumer's OrderBy on a stored event. A panic is
// recovered and logged, and the event is then not ordered (it is spread
// by its ID): the reader goes on, and an OrderBy that panics on an event
// always does, so every member places the event alike.
func (d *consumerDef) orderKey(e store.Event, log *slogLogger) (key string) {
	defer func() {
		if v := recover(); v != nil {
			key = ""
			log.l.Error("monster: OrderBy panicked; the event is handled without order", "consumer", d.name,
				"event", e.ID, "type", e.Type, "position", e.Position, "error", fmt.Errorf("panic: %v", v))
		}
	}()
	return d.opts.OrderBy(rawFromStore(e))
}
