package daemon

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gomonster/monster/monstertest"
)

// GET /v1/consumers/{name} and GET /v1/consumers show each member's
// partitions and every partition's state, besides the fields they had.
func TestGetConsumerPerPartition(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "k", 0)
	ctx := context.Background()
	if _, err := b.client.PutConsumer(ctx, "mailer", fastRetry(rcv.srv.URL, "k", "user.*")); err != nil {
		t.Fatal(err)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "every partition held", func() bool {
		c, err := b.client.Consumer(ctx, "mailer")
		return err == nil && len(c.Owners) == 1 && c.Members[c.Owners[0]] == c.Partitions && c.Partitions > 0
	})
	status, body := b.call(t, "GET", "/v1/consumers/mailer", "", nil)
	if status != 200 {
		t.Fatalf("GET consumer: %d %s", status, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "types", "position", "lag", "in_flight", "failures", "dead_letters", "partitions", "owners", "webhook", "members", "per_partition"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("GET /v1/consumers/mailer lacks %q: %s", k, body)
		}
	}
	c := decode[Consumer](t, body)
	if len(c.PerPartition) != c.Partitions {
		t.Fatalf("%d partitions listed, want %d: %s", len(c.PerPartition), c.Partitions, body)
	}
	for i, p := range c.PerPartition {
		if p.Partition != i || p.Owner != c.Owners[0] || p.LeaseExpires == nil || p.LeaseExpires.IsZero() {
			t.Errorf("partition %d: %+v, want partition %d held by %s with a lease", i, p, i, c.Owners[0])
		}
	}
	status, body = b.call(t, "GET", "/v1/consumers", "", nil)
	list := decode[struct {
		Consumers []Consumer `json:"consumers"`
	}](t, body)
	if status != 200 || len(list.Consumers) != 1 || len(list.Consumers[0].PerPartition) != c.Partitions || list.Consumers[0].Members[c.Owners[0]] != c.Partitions {
		t.Errorf("GET /v1/consumers: %d %s", status, body)
	}
}

// GET /v1/consumers/{name}/dead shows each event's key and data.
func TestDeadLettersCarryKeyAndData(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "k", 1000) // always fails
	ctx := context.Background()
	spec := fastRetry(rcv.srv.URL, "k", "user.*")
	spec.MaxAttempts = 1
	if _, err := b.client.PutConsumer(ctx, "audit", spec); err != nil {
		t.Fatal(err)
	}
	evs, err := b.client.Log(ctx, []NewEvent{
		{Type: "user.signed_up", Key: "ada", Data: json.RawMessage(`{"user":"ada","plan":"pro"}`)},
		{Type: "user.clicked", Data: json.RawMessage(`[1,2,3]`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "2 dead letters", func() bool {
		dls, err := b.client.DeadLetters(ctx, "audit", 0)
		return err == nil && len(dls) == 2
	})
	status, body := b.call(t, "GET", "/v1/consumers/audit/dead", "", nil)
	if status != 200 {
		t.Fatalf("GET dead: %d %s", status, body)
	}
	var raw struct {
		DeadLetters []map[string]json.RawMessage `json:"dead_letters"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.DeadLetters) != 2 {
		t.Fatalf("GET dead: %s, %v", body, err)
	}
	if got := string(raw.DeadLetters[0]["key"]); got != `"ada"` {
		t.Errorf("first dead letter's key %s, want \"ada\"", got)
	}
	if got := string(raw.DeadLetters[0]["data"]); got != `{"user":"ada","plan":"pro"}` {
		t.Errorf("first dead letter's data %s", got)
	}
	if _, ok := raw.DeadLetters[1]["key"]; ok {
		t.Errorf("a keyless event's dead letter has a key: %s", body)
	}
	if got := string(raw.DeadLetters[1]["data"]); got != `[1,2,3]` {
		t.Errorf("second dead letter's data %s", got)
	}
	if got := string(raw.DeadLetters[1]["event_id"]); got != `"`+evs[1].ID+`"` {
		t.Errorf("second dead letter's event_id %s, want %s", got, evs[1].ID)
	}
}
