package main

import (
	"testing"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
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
