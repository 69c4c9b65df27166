package mongodb

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// CrashMidAppend takes the append lock as a process would, writes the
// log entry and the event of a batch of one at the next position, and
// stops there, as if the process died. It returns a function that tries to
// commit afterwards, as the process would if it had only stalled.
func (s *Store) CrashMidAppend(ctx context.Context, eventID, typ string) (commit func() (bool, error), err error) {
	lockV, head, err := s.lockAppend(ctx, "crashed")
	if err != nil {
		return nil, err
	}
	pos := head.Committed + 1
	now := time.Now().UTC()
	if _, err := s.log.InsertOne(ctx, logDoc{Pos: pos, ID: eventID, Type: typ, Time: now.UnixNano()}); err != nil {
		return nil, err
	}
	_, err = s.db.Collection(s.CollectionName(typ)).InsertOne(ctx, bson.D{
		{Key: "_id", Value: eventID}, {Key: "pos", Value: pos}, {Key: "type", Value: typ},
		{Key: "time", Value: now}, {Key: "tns", Value: now.UnixNano()}, {Key: "data", Value: "{}"},
	})
	if err != nil {
		return nil, err
	}
	return func() (bool, error) {
		return s.endAppend(ctx, lockV, headDoc{Committed: pos, Counts: head.Counts, By: head.By})
	}, nil
}
