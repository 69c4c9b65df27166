package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// The store speaks JetStream's API directly where the jetstream package
// has no call for what it needs (atomic batches, batched direct gets) or
// would read from a follower (it sends gets to the leader).

// apiError is an error a JetStream API call answered with.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (JetStream error %d)", e.Description, e.ErrCode)
}

// JetStream error codes the store acts on.
const (
	errCodeNoMessage        = 10037
	errCodeWrongLastSeq     = 10071
	errCodeWrongLastSeqCons = 10164 // the same, on replicated streams
	errCodeBatchTooLarge    = 10199
)

func isWrongLastSeq(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.ErrCode == errCodeWrongLastSeq || ae.ErrCode == errCodeWrongLastSeqCons)
}

func isNoMessage(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.ErrCode == errCodeNoMessage
}

// storedMsg is a message read from a stream.
type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Data    []byte    `json:"data"`
	Time    time.Time `json:"time"`
}

// msgGetRequest is JetStream's message get request.
type msgGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	LastFor  string `json:"last_by_subj,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// leaderGet reads one message through the stream's leader, which has every
// acknowledged message (a follower serving a direct get may lag).
func (s *Store) leaderGet(ctx context.Context, stream string, req msgGetRequest) (storedMsg, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var reply *natsgo.Msg
	err := s.retryRead(ctx, func(attempt context.Context) error {
		var err error
		reply, err = s.nc.RequestWithContext(attempt, "$JS.API.STREAM.MSG.GET."+stream, body)
		return err
	})
	if err != nil {
		return storedMsg{}, callError(ctx, err)
	}
	var resp struct {
		Error   *apiError  `json:"error"`
		Message *storedMsg `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("bad message get response: %w", err)
	}
	if resp.Error != nil {
		return storedMsg{}, resp.Error
	}
	if resp.Message == nil {
		return storedMsg{}, errors.New("empty message get response")
	}
	return *resp.Message, nil
}

// readAttempt bounds one attempt of a read. A request that reached a
// server as it went down, or a stream between leaders, gets no answer at
// all; a read asks again, so that consumers go on soon after a new leader
// is elected instead of after the whole request timeout.
const readAttempt = 500 * time.Millisecond

// errNoDirectGets is a direct get that no replica received (503): the
// stream was just created, or its replicas are catching up.
var errNoDirectGets = errors.New("no server answers direct gets")

// maxReadAttempt caps an attempt's bound, which doubles after each attempt
// that timed out: a read that is merely slow (megabytes of events on a
// loaded machine) must finish, not be cut off at readAttempt for ever.
const maxReadAttempt = 15 * time.Second

// retryRead runs read with a context of its own bounded by readAttempt,
// again while the attempt timed out (with twice the bound, up to
// maxReadAttempt), or no server answered direct gets, and ctx allows.
func (s *Store) retryRead(ctx context.Context, read func(attempt context.Context) error) error {
	bound := readAttempt
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		attempt, cancel := context.WithTimeout(ctx, bound)
		err := read(attempt)
		timedOut := attempt.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNoDirectGets):
			if sleep(ctx, pause) != nil {
				return err
			}
		case !timedOut:
			return err
		default:
			bound = min(2*bound, maxReadAttempt)
		}
	}
}

// pubAck is JetStream's answer to a publish.
type pubAck struct {
	Error  *apiError `json:"error"`
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Count  int       `json:"count"`
}

// errNoAck is a publish that got no answer: it may have been stored.
type errNoAck struct{ err error }

func (e *errNoAck) Error() string { return e.err.Error() }
func (e *errNoAck) Unwrap() error { return e.err }

// request sends msg on nc and decodes the PubAck. An error of type
// *errNoAck means the outcome is unknown.
func (s *Store) request(ctx context.Context, nc *natsgo.Conn, msg *natsgo.Msg) (pubAck, error) {
	w := s.readLoss
	if nc == s.appendConn {
		w = s.appendLoss
	}
	ctx, cancel := s.callContextOn(ctx, w)
	defer cancel()
	var reply *natsgo.Msg
	var err error
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		reply, err = nc.RequestMsgWithContext(ctx, msg)
		if !errors.Is(err, natsgo.ErrNoResponders) {
			break
		}
		// Nobody received it, so nothing was stored: a stream just
		// created whose interest has not reached this server yet, or one
		// between leaders. Send it again while the call may wait.
		if sleep(ctx, pause) != nil {
			return pubAck{}, fmt.Errorf("no stream or no JetStream leader answers for subject %q: %w", msg.Subject, err)
		}
	}
	if err != nil {
		return pubAck{}, &errNoAck{callError(ctx, err)}
	}
	var ack pubAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return pubAck{}, &errNoAck{fmt.Errorf("bad publish acknowledgement %q: %w", reply.Data, err)}
	}
	if ack.Error != nil {
		return ack, ack.Error
	}
	return ack, nil
}

// publishCAS stores data on subject if the subject's last message is at
// sequence expect (0: the subject has none). It returns the new sequence;
// an error matched by isWrongLastSeq means another writer came first.
func (s *Store) publishCAS(ctx context.Context, subject string, data []byte, expect uint64) (uint64, error) {
	msg := natsgo.NewMsg(subject)
	msg.Data = data
	msg.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(expect, 10))
	ack, err := s.request(ctx, s.nc, msg)
	return ack.Seq, err
}

// publish stores data on subject, replacing the subject's last message in
// the state stream (which keeps one per subject).
func (s *Store) publish(ctx context.Context, subject string, data []byte) error {
	msg := natsgo.NewMsg(subject)
	msg.Data = data
	_, err := s.request(ctx, s.nc, msg)
	return err
}
