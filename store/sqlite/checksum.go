package sqlite

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/gomonster/monster/store"
)

// Every event stored by format version 2 carries in its sum column a
// CRC-32C of its content (ID, type, time, key, data, metadata, idempotency
// key), checked on every read: a byte of the file flipped on disk (a
// failing drive, a stray write) is reported as corruption of the event at
// that position, never returned as data. Events stored by format version 1
// have no sum (NULL) and are read unchecked.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// eventSum returns the checksum of an event's content. Each field is framed
// by its length, so that bytes moving from one field to the next change
// the sum.
func eventSum(id, typ string, nanos int64, key string, data, meta []byte, idem string) int64 {
	var num [binary.MaxVarintLen64]byte
	sum := uint32(0)
	field := func(b []byte) {
		sum = crc32.Update(sum, castagnoli, num[:binary.PutUvarint(num[:], uint64(len(b)))])
		sum = crc32.Update(sum, castagnoli, b)
	}
	fieldString := func(s string) {
		sum = crc32.Update(sum, castagnoli, num[:binary.PutUvarint(num[:], uint64(len(s)))])
		sum = crc32.Update(sum, castagnoli, []byte(s))
	}
	fieldString(id)
	fieldString(typ)
	binary.BigEndian.PutUint64(num[:8], uint64(nanos))
	sum = crc32.Update(sum, castagnoli, num[:8])
	fieldString(key)
	field(data)
	field(meta)
	fieldString(idem)
	return int64(sum)
}

// newEventSum is eventSum of an event about to be stored.
func newEventSum(e *store.NewEvent) int64 {
	return eventSum(e.ID, e.Type, e.Time.UnixNano(), e.Key, e.Data, e.Meta, e.IdempotencyKey)
}

// checkSum returns an error wrapping store.ErrCorrupt if e, read back with
// the stored sum (nil for an event of format version 1), does not match it.
func checkSum(e *store.Event, stored any) error {
	want, ok := stored.(int64)
	if !ok {
		return nil
	}
	if got := eventSum(e.ID, e.Type, e.Time.UnixNano(), e.Key, e.Data, e.Meta, e.IdempotencyKey); got != want {
		return errorf(store.ErrCorrupt, "monster: sqlite: the event at position %d is corrupt: its content does not match the checksum stored with it "+
			"(the file was damaged on disk; restore it from a backup)", e.Position)
	}
	return nil
}
