package store

import (
	"fmt"
	"strings"
	"time"
)

// ValidateNewEvents checks what every store asks of the events given to
// Append, before it stores any of them: each has an ID, a type without
// control characters, a time and data; and, unless earliest and latest are
// both zero, a time between them (the times the store can keep). op names
// the store and the operation in the messages, as in "sqlite append". The
// runtime checks more (type names, JSON, sizes) before it calls Append;
// this is what a store must not rely on callers for.
func ValidateNewEvents(op string, events []NewEvent, earliest, latest time.Time) error {
	bounded := !earliest.IsZero() || !latest.IsZero()
	for i := range events {
		e := &events[i]
		switch {
		case e.ID == "":
			return fmt.Errorf("monster: %s: event %d has no ID", op, i)
		case e.Type == "":
			return fmt.Errorf("monster: %s: event %q has no type", op, e.ID)
		case strings.ContainsFunc(e.Type, isControl):
			return fmt.Errorf("monster: %s: event %q: type %q contains a control character", op, e.ID, e.Type)
		case e.Time.IsZero():
			return fmt.Errorf("monster: %s: event %q has no time", op, e.ID)
		case bounded && (e.Time.Before(earliest) || e.Time.After(latest)):
			return fmt.Errorf("monster: %s: event %q: time %v is outside the years %d to %d that the store can keep",
				op, e.ID, e.Time, earliest.Year(), latest.Year())
		case len(e.Data) == 0:
			return fmt.Errorf("monster: %s: event %q has no data", op, e.ID)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ValidateConsumerSpec checks what every store asks of a spec given to
// RegisterConsumer, before it stores anything: a name, at least one
// partition, a start position that is not negative and a partitioning
// this version knows ([Partitioning.Known]). op names the store
// and the operation in the messages, as in "sqlite register consumer".
func ValidateConsumerSpec(op string, spec ConsumerSpec) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("monster: %s: empty name", op)
	case spec.Partitions < 1:
		return fmt.Errorf("monster: %s %q: %d partitions, want at least 1", op, spec.Name, spec.Partitions)
	case spec.Start < 0:
		return fmt.Errorf("monster: %s %q: negative start position %d", op, spec.Name, spec.Start)
	case !spec.Partitioning.Known():
		return fmt.Errorf("monster: %s %q: unknown partitioning %q, want %q, %q or \"\" (key, else type); a newer runtime may know it: upgrade",
			op, spec.Name, string(spec.Partitioning), string(PartitionByKeyOrID), string(PartitionByOrderKey))
	}
	return nil
}

// ConflictingPartitions is the error a store returns from RegisterConsumer
// when the consumer exists with another number of partitions; it wraps
// [ErrConflict].
func ConflictingPartitions(consumer string, stored, asked int) error {
	return Errorf(ErrConflict, "monster: consumer %q is registered with %d partitions, not %d; the count is fixed when the consumer is first registered (delete the consumer to change it)",
		consumer, stored, asked)
}
