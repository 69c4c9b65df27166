// Package pymonster holds what the programs of pymonster's README
// walkthrough, ported to Monster, share: the event types (pymonster's
// example events package), custom_1's CustomEventLogger, the consumers
// (its example consumers package) and the -store flag.
//
// The programs are:
//
//   - producer: the first terminal, logging event_1, user.bought_shirt and
//     custom_1, then the loop of 20 event_1/custom_1 events;
//   - consumer: the other terminal(s), consuming the three types until
//     Ctrl-C;
//   - background: pymonster's consume_events_debug_thread, consumers and
//     logging in one process.
//
// See README.md for how to run them.
package pymonster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/gomonster/monster"
)

// The walkthrough's event types. pymonster prefixed them with the package
// ("events_event_1"); Monster keeps the names as given.
const (
	Event1      = "event_1"
	BoughtShirt = "user.bought_shirt"
	Custom1     = "custom_1"
)

// Shirt is the data of a user.bought_shirt event.
type Shirt struct {
	User     string `json:"user"`
	Quantity int    `json:"quantity"`
}

// Events are the walkthrough's declared event types. event_1 and custom_1
// are not declared: as in pymonster, an event needs no declaration to be
// logged ("we don't have to create any classes to be able to use these
// events, but we can!").
type Events struct {
	// BoughtShirt is user.bought_shirt, whose data must be a Shirt with a
	// user and a positive quantity.
	BoughtShirt *monster.Type[Shirt]
}

// Declare declares the walkthrough's event types on m and adds custom_1's
// CustomEventLogger, which prints to out.
func Declare(m *monster.Monster, out io.Writer) Events {
	m.UseLog(CustomEventLogger(out))
	return Events{
		BoughtShirt: monster.Declare(m, BoughtShirt, monster.Validate(func(s Shirt) error {
			if s.User == "" {
				return monster.FieldError("user", "is required")
			}
			if s.Quantity <= 0 {
				return monster.FieldError("quantity", "must be positive")
			}
			return nil
		})),
	}
}

// CustomEventLogger is custom_1's custom log method as log middleware: it
// prints "[CustomEventLogger][custom_1] <message>" before the event is
// stored (and so before the standard verbose line). Other types pass
// through untouched. Log middleware could equally check or change the data
// before it is stored.
func CustomEventLogger(out io.Writer) monster.LogMiddleware {
	return func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error {
			if e.Type == Custom1 {
				fmt.Fprintf(out, "[CustomEventLogger][%s] %v\n", e.Type, e.Data)
			}
			return next(ctx, e)
		}
	}
}

// ConsumerNames returns the names of the consumers RegisterConsumers
// declares, pymonster's consumers.event_1, consumers.user.bought_a_shirt
// and consumers.custom_1.
func ConsumerNames() []string { return []string{"event_1", "user.bought_a_shirt", "custom_1"} }

// RegisterConsumers declares the walkthrough's consumers on m, like
// pymonster.register_events: the default consumer for event_1 and for
// user.bought_shirt, and the CustomConsumer for custom_1. Each is an
// independent consumer with its own position in the log, and they print
// to out, which must be safe for concurrent use (see Synchronized).
func RegisterConsumers(m *monster.Monster, out io.Writer) error {
	handlers := []monster.Handler{
		monster.Match(Event1, DefaultConsumer(out)),
		monster.Match(BoughtShirt, DefaultConsumer(out)),
		monster.Match(Custom1, CustomConsumer(out)),
	}
	names := ConsumerNames()
	for i, h := range handlers {
		if err := m.Consume(names[i], h, nil); err != nil {
			return err
		}
	}
	return nil
}

// DefaultConsumer prints each event as "[Consumer][<type>][<position>]:
// <message>", pymonster's BaseConsumer.
func DefaultConsumer(out io.Writer) func(context.Context, monster.RawEvent) error {
	return func(ctx context.Context, e monster.RawEvent) error {
		_, err := fmt.Fprintf(out, "[Consumer][%s][%d]: %s\n", e.Type, e.Position, Message(e))
		return err
	}
}

// CustomConsumer is custom_1's consumer: it prints
// "[CustomConsumer][custom_1][<position>]: <message>". An event whose data
// is not a string message fails; it is retried and then dead-lettered,
// without holding up the other consumers.
func CustomConsumer(out io.Writer) func(context.Context, monster.RawEvent) error {
	return func(ctx context.Context, e monster.RawEvent) error {
		var msg string
		if err := json.Unmarshal(e.Data, &msg); err != nil {
			return fmt.Errorf("custom_1 wants a string message, got %s", e.Data)
		}
		_, err := fmt.Fprintf(out, "[CustomConsumer][%s][%d]: %s\n", e.Type, e.Position, msg)
		return err
	}
}

// Message returns an event's data as pymonster printed it: a string
// message without its quotes, anything else as JSON.
func Message(e monster.RawEvent) string {
	var msg string
	if err := json.Unmarshal(e.Data, &msg); err == nil {
		return msg
	}
	return string(e.Data)
}

// StoreFlag defines the producer's and consumer's -store flag on fs: the
// store to open, by default $MONSTER_STORE, or ./monster.db when that is
// unset. The programs import the PostgreSQL and MongoDB stores themselves;
// this package imports none, so that the background program, which opens
// SQLite files only, compiles no server driver.
func StoreFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("MONSTER_STORE")
	if def == "" {
		def = monster.DefaultPath
	}
	return fs.String("store", def, "store `path or URL` ($MONSTER_STORE sets the default)")
}

// Synchronized returns a writer that passes each Write to w whole, one at
// a time, so that lines printed by concurrent consumers and the verbose
// logger never interleave.
func Synchronized(w io.Writer) io.Writer { return &syncWriter{w: w} }

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
