// Package monstertest helps applications test their own code that logs and
// consumes Monster events: eventlib's test mode, in Go.
//
// # Eager mode
//
// New returns a Monster on a fresh in-memory store in eager mode: Log runs
// the handler of every matching consumer before it returns, in the test's
// goroutine. A handler's failure fails the test, and Log returns what it
// returns in production (nil once the event is stored), so the code under
// test behaves as in production; a test that expects failures records them
// with HandlerFailures. A test can then call the code under test and check
// its effects at once, with no waiting:
//
//	func TestProductPage(t *testing.T) {
//		m := monstertest.New(t, nil)
//		views := monstertest.Record(t, m, "views", shoestore.ProductViewedType)
//		page := shoestore.NewHandler(shoestore.Declare(m), shoestore.DemoCatalog(), nil)
//
//		rec := httptest.NewRecorder()
//		page.ServeHTTP(rec, httptest.NewRequest("GET", "/products/air-1?user=alice", nil))
//
//		require.Equal(t, 200, rec.Code)
//		events := monstertest.RequireLogged(t, m, shoestore.ProductViewedType, 1)
//		viewed := monstertest.Data[shoestore.ProductViewed](t, events[0])
//		require.Equal(t, "alice", viewed.User)
//		require.Equal(t, 1, views.Len()) // the consumer has already run
//	}
//
// (The shoe store is the eventlib example, in examples/eventlib.)
//
// # Background consumers
//
// NewAsync returns a Monster whose consumers run in the background, as in
// production, with short timings. Wait for them with WaitCaughtUp (the
// consumer has handled everything logged so far), Recorder.Wait (at least n
// deliveries) or Eventually (any condition), each of which fails the test
// with a clear message after WaitTimeout instead of hanging:
//
//	m := monstertest.NewAsync(t, nil)
//	require.NoError(t, m.Consume("mailer", mailerHandler, &monster.ConsumerOptions{
//		Retry: monster.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond},
//	}))
//	_, err := m.Log(ctx, "user.bought_shirt", shirt)
//	require.NoError(t, err)
//	monstertest.WaitCaughtUp(t, m, "mailer")
//	dead, err := m.DeadLetters(ctx, "mailer", 0)
//
// # Assertions
//
// Logged, RequireLogged and RequireNotLogged look at what is stored in the
// log, by exact type or glob ("user.*"). Record declares a consumer whose
// handler is a Recorder, which keeps every delivery; FailWith makes it fail,
// to test retries and dead letters. Data decodes an event's data.
//
// # Other stores
//
// New and NewAsync use an in-memory store. A test that needs another (an
// SQLite file shared with a second process, say) opens its own Monster with
// Options, which fills in a logger writing to the test's log (Logger) and
// short timings; WaitCaughtUp, Eventually and the assertions work on any
// Monster.
package monstertest
