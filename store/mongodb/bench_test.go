package mongodb_test

import (
	"context"
	"os"
	"testing"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/mongodb"
	"github.com/gomonster/monster/store/storetest"
)

// benchServer is MONSTER_TEST_MONGO_URL when set, else embedded FerretDB.
func benchServer(b *testing.B) string {
	if u := os.Getenv("MONSTER_TEST_MONGO_URL"); u != "" {
		return u
	}
	return startFerretDB(b)
}

// opener returns a function that opens a fresh database on the server at
// base for each benchmark.
func opener(base string) func(b *testing.B) store.Store {
	return func(b *testing.B) store.Store {
		b.Helper()
		s, err := mongodb.Open(context.Background(), dbURL(b, base), nil)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
}

// BenchmarkLog measures durable Log throughput from 1 and from 64
// concurrent goroutines.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 5000x
func BenchmarkLog(b *testing.B) { storetest.RunLogBenchmark(b, opener(benchServer(b))) }

// BenchmarkBurnDown measures one consumer working through stored events.
//
//	go test -run '^$' -bench BurnDown -benchtime 20000x
func BenchmarkBurnDown(b *testing.B) {
	storetest.RunBurnDownBenchmark(b, opener(benchServer(b)), 1000)
}
