package store

import "testing"

// A read's result starts small, grows at once to the page it is probably
// reading, and never to a huge limit it does not reach.
func TestGrowEvents(t *testing.T) {
	for _, tc := range []struct {
		limit, rows int
		maxCap      int // the capacity may not exceed this
		minCap      int // nor fall short of this
	}{
		{limit: 512, rows: 1, minCap: 1, maxCap: 16},
		{limit: 512, rows: 16, minCap: 16, maxCap: 16},
		{limit: 512, rows: 17, minCap: 512, maxCap: 512},
		{limit: 512, rows: 512, minCap: 512, maxCap: 512},
		{limit: 5, rows: 5, minCap: 5, maxCap: 5},
		{limit: 1_000_000, rows: 20, minCap: 1024, maxCap: 1024},
		{limit: 1_000_000, rows: 3000, minCap: 3000, maxCap: 7000},
		{limit: 0, rows: 3, minCap: 3, maxCap: 8},
		{limit: 0, rows: 100, minCap: 100, maxCap: 256},
	} {
		var events []Event
		allocations := 0
		for i := range tc.rows {
			before := cap(events)
			events = append(GrowEvents(events, tc.limit), Event{Position: int64(i + 1)})
			if cap(events) != before {
				allocations++
			}
		}
		if len(events) != tc.rows || events[len(events)-1].Position != int64(tc.rows) {
			t.Fatalf("limit %d, %d rows: got %d events", tc.limit, tc.rows, len(events))
		}
		if c := cap(events); c < tc.minCap || c > tc.maxCap {
			t.Errorf("limit %d, %d rows: capacity %d, want %d to %d (%d allocations)", tc.limit, tc.rows, c, tc.minCap, tc.maxCap, allocations)
		}
		if tc.limit > 0 && tc.rows <= min(tc.limit, 1024) && allocations > 2 {
			t.Errorf("limit %d, %d rows: %d allocations, want at most 2", tc.limit, tc.rows, allocations)
		}
	}
}
