package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

// A consumer the daemon's Monster declares but has not started is listed
// as not started, with no dead letters, instead of answering 404.
func TestDeclaredConsumerNotStarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", monstertest.Options(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for _, typ := range []string{"user.signed_up", "order.placed"} {
		if _, err := m.Log(ctx, typ, "x"); err != nil {
			t.Fatal(err)
		}
	}
	noop := func(ctx context.Context, e monster.RawEvent) error { return nil }
	if err := m.Consume("mailer", monster.Match("user.*", noop), nil); err != nil {
		t.Fatal(err)
	}
	l := NewLocal(m, 0)

	cs, err := l.Consumers(ctx)
	if err != nil || len(cs) != 1 || cs[0].Name != "mailer" || !cs[0].NotStarted || cs[0].Lag != 1 {
		t.Fatalf("Consumers: %+v, %v; want mailer not started with lag 1", cs, err)
	}
	body, err := json.Marshal(cs[0])
	if err != nil || !strings.Contains(string(body), `"not_started":true`) {
		t.Errorf("JSON %s, %v: want \"not_started\":true", body, err)
	}
	c, err := l.Consumer(ctx, "mailer")
	if err != nil || !c.NotStarted {
		t.Errorf("Consumer: %+v, %v", c, err)
	}
	dls, err := l.DeadLetters(ctx, "mailer", 0)
	if err != nil || dls == nil || len(dls) != 0 {
		t.Errorf("DeadLetters: %#v, %v; want an empty list", dls, err)
	}
	if n, err := l.RetryDeadLetters(ctx, "mailer"); err != nil || n != 0 {
		t.Errorf("RetryDeadLetters all: %d, %v; want 0", n, err)
	}
	err = l.ResetConsumer(ctx, "mailer", "end")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || !strings.Contains(e.Message, "has not started yet") {
		t.Errorf("ResetConsumer: %v; want a 404 saying it has not started", err)
	}
	if _, err := l.Consumer(ctx, "ghost"); !IsNotFound(err) {
		t.Errorf("Consumer ghost: %v; want not found", err)
	}
}
