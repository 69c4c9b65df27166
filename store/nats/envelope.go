package nats

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/gomonster/monster/store"
)

// An event is stored as one message on <prefix>.ev.<type> whose body is
// an envelope: a format byte, then the type, ID, key, idempotency key and
// metadata, each with its length as a uvarint, the time as a varint of
// Unix nanoseconds, and the data to the end. The body holds everything
// (headers hold only the batch's bookkeeping), so an event reads back byte
// for byte whatever its metadata contains, and Read can ask the server for
// bodies alone. The format byte is not an ASCII digit, which tells an
// event from a marker (whose body is "1" or "2").
const envelopeV1 = 1

func encodeEnvelope(e *store.NewEvent) []byte {
	n := 1 + 5*binary.MaxVarintLen64 + len(e.Type) + binary.MaxVarintLen64 +
		len(e.ID) + len(e.Key) + len(e.IdempotencyKey) + len(e.Meta) + len(e.Data)
	b := make([]byte, 0, n)
	b = append(b, envelopeV1)
	for _, f := range []string{e.Type, e.ID, e.Key, e.IdempotencyKey} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Meta)))
	b = append(b, e.Meta...)
	b = binary.AppendVarint(b, e.Time.UnixNano())
	return append(b, e.Data...)
}

var errBadEnvelope = errors.New("not a monster event envelope")

// isEnvelope tells an event's body from a marker's.
func isEnvelope(body []byte) bool { return len(body) > 0 && body[0] == envelopeV1 }

// decodeEnvelope fills ev from body; the slices it sets are copies.
func decodeEnvelope(body []byte, ev *store.Event) error {
	if len(body) == 0 || body[0] != envelopeV1 {
		return errBadEnvelope
	}
	b := body[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, false
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	typ, ok0 := field()
	id, ok1 := field()
	key, ok2 := field()
	idem, ok3 := field()
	meta, ok4 := field()
	if !ok0 || !ok1 || !ok2 || !ok3 || !ok4 {
		return errBadEnvelope
	}
	nanos, k := binary.Varint(b)
	if k <= 0 {
		return errBadEnvelope
	}
	data := b[k:]
	ev.Type, ev.ID, ev.Key, ev.IdempotencyKey = string(typ), string(id), string(key), string(idem)
	ev.Time = time.Unix(0, nanos).UTC()
	if len(meta) > 0 {
		ev.Meta = append([]byte(nil), meta...)
	} else {
		ev.Meta = nil
	}
	ev.Data = append([]byte(nil), data...)
	return nil
}

// token encodes any string as one subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}
