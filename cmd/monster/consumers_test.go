package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
	"github.com/gomonster/monster/store"
)

func TestPositionCell(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c    monster.ConsumerStats
		want string
	}{
		{monster.ConsumerStats{Position: 40}, "40"},
		{monster.ConsumerStats{Position: 0}, "0"},
		{monster.ConsumerStats{Position: 7, NotStarted: true}, "not started"},
	} {
		if got := positionCell(daemon.Consumer{ConsumerStats: tt.c}); got != tt.want {
			t.Errorf("positionCell(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestMembersAndLeaseCells(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	takeover := monster.ConsumerStats{
		Members: map[string]int{"m2": 2, "m1": 1},
		PerPartition: []monster.PartitionStats{
			{Partition: 0, Owner: "m1", LeaseExpires: at(-12 * time.Second)},
			{Partition: 1, Owner: "m2", LeaseExpires: at(4 * time.Second)},
			{Partition: 2, Owner: "m2", LeaseExpires: at(4 * time.Second)},
			{Partition: 3},
		},
	}
	for _, tt := range []struct {
		name string
		c    monster.ConsumerStats
		want string
	}{
		{"takeover", takeover, "m1: 1 (lease expired), m2: 2, free: 1"},
		{"stopped", monster.ConsumerStats{PerPartition: []monster.PartitionStats{{Partition: 0}}}, "free: 1"},
		{"nothing stored", monster.ConsumerStats{}, "-"},
		{"not started", monster.ConsumerStats{NotStarted: true, Partitions: 16}, ""},
	} {
		if got := membersCell(tt.c, now); got != tt.want {
			t.Errorf("%s: membersCell = %q, want %q", tt.name, got, tt.want)
		}
	}
	for i, want := range []string{"expired 12s ago", "expires in 4s", "expires in 4s", "-"} {
		if got := leaseCell(takeover.PerPartition[i], now); got != want {
			t.Errorf("leaseCell(partition %d) = %q, want %q", i, got, want)
		}
	}
}

// TestConsumersShowsTakeover sets up a takeover in the store (a dead
// member still holds partition 0 at checkpoint 0; the survivor has moved
// partition 1 to 3) and checks that the table, -v and --json show it.
func TestConsumersShowsTakeover(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "monster.db")
	ctx := context.Background()
	m, err := monster.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := m.Log(ctx, "order.placed", 1); err != nil {
			t.Fatal(err)
		}
	}
	st := m.Store()
	if _, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: "warehouse", Types: []string{"order.*"}, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.Claim(ctx, store.ClaimParams{Consumer: "warehouse", Member: "dead-member", Partitions: []int{0}, Expires: now.Add(-time.Minute), Now: now.Add(-2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, store.ClaimParams{Consumer: "warehouse", Member: "survivor", Partitions: []int{1}, Expires: now.Add(time.Hour), Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "warehouse", Member: "survivor", Checkpoints: []store.Checkpoint{{Partition: 1, Position: 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MONSTER_STORE": path}

	out := mustRun(t, env, "consumers")
	if !strings.Contains(out, "MEMBERS") || !strings.Contains(out, "dead-member: 1 (lease expired), survivor: 1") {
		t.Errorf("consumers:\n%s", out)
	}
	if strings.Contains(out, "PARTITION") {
		t.Errorf("consumers without -v lists partitions:\n%s", out)
	}
	out = mustRun(t, env, "consumers", "-v")
	for _, want := range []string{"warehouse: 2 partitions", "PARTITION", "CHECKPOINT", "LEASE", "expired 1m0s ago"} {
		if !strings.Contains(out, want) {
			t.Errorf("consumers -v lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+1\s+3\s+survivor\s+expires in \S+\s+0\s+0$`).MatchString(out) {
		t.Errorf("consumers -v: no row for the survivor's partition 1 at checkpoint 3:\n%s", out)
	}
	var list daemon.ConsumerList
	if err := json.Unmarshal([]byte(mustRun(t, env, "consumers", "--json")), &list); err != nil || len(list.Consumers) != 1 {
		t.Fatalf("consumers --json: %+v, %v", list, err)
	}
	c := list.Consumers[0]
	if c.Position != 0 || c.Members["survivor"] != 1 || len(c.PerPartition) != 2 || c.PerPartition[1].Checkpoint != 3 {
		t.Errorf("consumers --json: %+v", c)
	}
}

func TestCell(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{`{"a":1}`, 40, `{"a":1}`},
		{"{\n  \"a\": 1\n}", 40, `{ "a": 1 }`},
		{"key\twith\ttabs", 40, "key with tabs"},
		{"abcdefghij", 5, "abcd…"},
		{"", 5, ""},
	} {
		if got := cell(tt.in, tt.n); got != tt.want {
			t.Errorf("cell(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
