package store

// Wrap returns a Store that answers every method of the [Store] interface
// with outer and keeps the optional capabilities of inner: the result
// implements [SQLTxAppender] and [Notifier] exactly when outer or inner
// does, and calls outer's implementation when outer has one, inner's
// otherwise. A wrapper (for metrics, fault injection or sharing) embeds or
// holds inner, implements Store, and returns Wrap(itself, inner), so that
// the runtime finds the same capabilities through the wrapper as on the
// bare store: LogTx keeps working, and so do wake-ups from other processes.
func Wrap(outer, inner Store) Store {
	tx, isTx := outer.(SQLTxAppender)
	if !isTx {
		tx, isTx = inner.(SQLTxAppender)
	}
	n, isNotifier := outer.(Notifier)
	if !isNotifier {
		n, isNotifier = inner.(Notifier)
	}
	switch {
	case isTx && isNotifier:
		return struct {
			Store
			SQLTxAppender
			Notifier
		}{outer, tx, n}
	case isTx:
		return struct {
			Store
			SQLTxAppender
		}{outer, tx}
	case isNotifier:
		return struct {
			Store
			Notifier
		}{outer, n}
	}
	return struct{ Store }{outer}
}
