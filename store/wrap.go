package store

// Wrap returns a Store that answers every method of the [Store] interface
// with outer and keeps the optional capabilities of inner: the result
// implements [SQLTxAppender], [TxAppender] and [Notifier] exactly when outer
// or inner does, and calls outer's implementation when outer has one,
// inner's otherwise. A wrapper (for metrics, fault injection or sharing)
// embeds or holds inner, implements Store, and returns Wrap(itself, inner),
// so that the runtime finds the same capabilities through the wrapper as on
// the bare store: transactional logging keeps working, and so do wake-ups
// from other processes.
func Wrap(outer, inner Store) Store {
	sqlTx, hasSQLTx := capability[SQLTxAppender](outer, inner)
	tx, hasTx := capability[TxAppender](outer, inner)
	n, hasNotifier := capability[Notifier](outer, inner)
	switch {
	case hasSQLTx && hasTx && hasNotifier:
		return struct {
			Store
			SQLTxAppender
			TxAppender
			Notifier
		}{outer, sqlTx, tx, n}
	case hasSQLTx && hasTx:
		return struct {
			Store
			SQLTxAppender
			TxAppender
		}{outer, sqlTx, tx}
	case hasSQLTx && hasNotifier:
		return struct {
			Store
			SQLTxAppender
			Notifier
		}{outer, sqlTx, n}
	case hasTx && hasNotifier:
		return struct {
			Store
			TxAppender
			Notifier
		}{outer, tx, n}
	case hasSQLTx:
		return struct {
			Store
			SQLTxAppender
		}{outer, sqlTx}
	case hasTx:
		return struct {
			Store
			TxAppender
		}{outer, tx}
	case hasNotifier:
		return struct {
			Store
			Notifier
		}{outer, n}
	}
	return struct{ Store }{outer}
}

// capability returns outer as a T if it is one, else inner.
func capability[T any](outer, inner Store) (T, bool) {
	if c, ok := outer.(T); ok {
		return c, true
	}
	c, ok := inner.(T)
	return c, ok
}
