package monster

import "log/slog"

// slogLogger writes a consumer's operational messages.
type slogLogger struct {
	l        *slog.Logger
	consumer string
}

func (l *slogLogger) warn(what string, err error) {
	l.l.Warn("monster: "+what, "consumer", l.consumer, "error", err)
}

func (l *slogLogger) error(what string, err error) {
	l.l.Error("monster: "+what, "consumer", l.consumer, "error", err)
}

// retry is at debug level: a failure that will be retried is routine (a
// dead webhook gave 86 lines at info), and dead-lettering, the outcome an
// operator must act on, is a warning.
func (l *slogLogger) retry(e RawEvent, err error) {
	l.l.Debug("monster: handler failed, will retry", "consumer", l.consumer, "event", e.ID,
		"type", e.Type, "position", e.Position, "attempt", e.Attempt, "error", err)
}

func (l *slogLogger) dead(e RawEvent, err error) {
	l.l.Warn("monster: event dead-lettered", "consumer", l.consumer, "event", e.ID,
		"type", e.Type, "position", e.Position, "attempts", e.Attempt, "error", err)
}
