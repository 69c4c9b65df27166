package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the request body up to the configured limit; 413 past it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	limit := int64(s.cfg.MaxRequestBytes)
	if r.ContentLength > limit {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body of %d bytes is over the limit of %d", r.ContentLength, limit)
	}
	body := &deadlineReader{body: r.Body, rc: http.NewResponseController(w), wait: time.Duration(s.cfg.BodyReadTimeout)}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, body, limit))
	if err == nil {
		body.done()
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over the limit of %d bytes", limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.Header().Set("Connection", "close")
		return newError(http.StatusRequestTimeout, CodeRequestTimeout, "no bytes of the request body arrived for %v (body_read_timeout); %d bytes were read",
			body.wait, buf.Len())
	}
	if err != nil {
		return newError(http.StatusBadRequest, CodeBadRequest, "reading the request body: %v", err)
	}
	return nil
}

// deadlineReader reads a request body with a deadline on each read, so a
// client that stops sending cannot hold the connection (and a handler)
// forever, while a slow upload that keeps sending is not cut off.
type deadlineReader struct {
	body io.ReadCloser
	rc   *http.ResponseController
	wait time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	// A writer that cannot set deadlines (a test's recorder) reads as
	// before: there is no connection to hold.
	_ = d.rc.SetReadDeadline(time.Now().Add(d.wait))
	return d.body.Read(p)
}

func (d *deadlineReader) Close() error { return d.body.Close() }

// done lifts the deadline once the whole body is read: the server then
// reads the connection in the background to notice a client leaving, and a
// deadline passing there would cancel the request's context while its
// events are being stored. After a failed read the deadline stays, so the
// server's discarding of an unread rest cannot wait forever either.
func (d *deadlineReader) done() { _ = d.rc.SetReadDeadline(time.Time{}) }

// decodeBody decodes a small JSON object body strictly.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBuffers.Put(buf)
	if err := s.readBody(w, r, buf); err != nil {
		return err
	}
	body := bytes.TrimSpace(buf.Bytes())
	if len(body) == 0 || body[0] != '{' {
		what := "empty"
		if len(body) > 0 {
			what = jsonKind(body[0])
		}
		return newError(http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object, not %s", what)
	}
	return strictUnmarshal(body, v, "")
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) error {
	// Not a pooled buffer: the decoded events' data are subslices of the
	// body, and a store may keep them (memory://).
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= int64(s.cfg.MaxRequestBytes) {
		// Room for the usual body at once; past preallocateBody the buffer
		// grows as bytes arrive, so a large Content-Length alone holds no
		// memory.
		buf.Grow(int(min(n, preallocateBody)) + bytes.MinRead)
	}
	if err := s.readBody(w, r, &buf); err != nil {
		return err
	}
	events, batch, err := decodeEvents(buf.Bytes(), s.cfg.MaxEventBytes)
	if err != nil {
		return err
	}
	stored, err := s.local.Log(r.Context(), events)
	if err != nil {
		return err
	}
	writeStored(w, stored, batch)
	return nil
}

// preallocateBody is the most of a POST /v1/events body's announced
// length that is allocated before the bytes arrive.
const preallocateBody = 256 << 10

// Header values of the JSON answers, shared: net/http only reads them.
var (
	headerJSON    = []string{"application/json"}
	headerNoSniff = []string{"nosniff"}
)

var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeStored answers 201 with the stored events as docs/http-api.md has it: id,
// type, position and time of each (the client has the rest), one event as
// an object, a batch as {"events":[...]}.
func writeStored(w http.ResponseWriter, stored []Event, batch bool) {
	bp := answerBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	if batch {
		b = append(b, `{"events":[`...)
	}
	for i := range stored {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStored(b, &stored[i])
	}
	if batch {
		b = append(b, "]}"...)
	}
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNoSniff
	if len(b) > 2048 {
		// Smaller answers fit net/http's buffer, which then sets the
		// length itself; larger ones would be chunked without it.
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		answerBuffers.Put(bp)
	}
}

// StoredEvent is what POST /v1/events answers for each stored event.
type StoredEvent struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Position int64     `json:"position"`
	Time     time.Time `json:"time"`
}

// appendStored appends e as a StoredEvent in JSON.
func appendStored(b []byte, e *Event) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, e.Position, 10)
	b = append(b, `,"time":`...)
	b = append(b, '"')
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b
}

// appendJSONString appends s as a JSON string. IDs and event types are
// plain ASCII; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// intParam parses an integer query parameter, def when absent.
func intParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, newError(http.StatusBadRequest, CodeBadRequest, "query parameter %s=%q is not an integer", name, v)
	}
	return n, nil
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	after, err := intParam(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 {
		return newError(http.StatusBadRequest, CodeBadRequest, "limit %d: want 1 to 1000", limit)
	}
	page, err := s.local.Events(r.Context(), EventsQuery{Type: r.URL.Query().Get("type"), After: after, Limit: int(min(limit, 1<<20))})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	e, err := s.local.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) getTypes(w http.ResponseWriter, r *http.Request) error {
	types, err := s.local.Types(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TypeList{types})
	return nil
}

// tailHeartbeat is how often an idle tail sends a comment line, so proxies
// and clients see the connection is alive.
const tailHeartbeat = 15 * time.Second

func (s *Server) getTail(w http.ResponseWriter, r *http.Request) error {
	var types []string
	for _, v := range r.URL.Query()["types"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				types = append(types, p)
			}
		}
	}
	if err := checkPatterns("types", types); err != nil {
		return err
	}
	after, err := intParam(r, "after", -1)
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = strconv.ParseInt(id, 10, 64); err != nil {
			return newError(http.StatusBadRequest, CodeBadRequest, "Last-Event-ID %q is not a position", id)
		}
	}
	if after < 0 {
		// From now: the head is read before the stream opens, so an event
		// logged after the client sees the opening line is always sent.
		if after, err = s.m.Store().Head(r.Context()); err != nil {
			return apiError(err)
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": monster tail\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	var mu sync.Mutex // the heartbeat and the events share w
	heartbeat := time.NewTicker(tailHeartbeat)
	defer heartbeat.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-heartbeat.C:
				mu.Lock()
				_, err := fmt.Fprint(w, ": ping\n\n")
				if err == nil {
					err = rc.Flush()
				}
				mu.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	err = s.local.Tail(ctx, TailQuery{Types: types, After: after}, func(e Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Position, e.Type, b); err != nil {
			return err
		}
		return rc.Flush()
	})
	cancel()
	mu.Lock() // the heartbeat must not write after the handler returns
	defer mu.Unlock()
	if err != nil && ctx.Err() == nil {
		s.logger.Warn("monster: tail ended", "error", err)
	}
	return nil // the stream has begun: errors cannot be answered any more
}

func (s *Server) getConsumers(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.local.Consumers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ConsumerList{cs})
	return nil
}

func (s *Server) getConsumer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.local.Consumer(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// PutConsumerResult is the answer to PUT /v1/consumers/{name}.
type PutConsumerResult struct {
	Name    string      `json:"name"`
	Types   []string    `json:"types"`
	Webhook WebhookInfo `json:"webhook"`
	Created bool        `json:"created"`
}

func (s *Server) putConsumer(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var spec ConsumerSpec
	if err := s.decodeBody(w, r, &spec); err != nil {
		return err
	}
	if spec.Webhook.SecretEnv != "" {
		return newError(http.StatusBadRequest, CodeInvalidField, "webhook.secret_env is for the configuration file; send webhook.secret")
	}
	existed := s.webhooks.info(name) != nil
	if err := s.webhooks.put(r.Context(), name, spec, "api"); err != nil {
		return err
	}
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
	}
	writeJSON(w, status, PutConsumerResult{Name: name, Types: spec.Types, Webhook: WebhookInfo{URL: redactURL(spec.Webhook.URL), Source: "api"}, Created: !existed})
	return nil
}

func (s *Server) deleteConsumer(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	wasWebhook, err := s.webhooks.remove(r.Context(), name)
	if err != nil {
		return err
	}
	err = s.m.Store().DeleteConsumer(r.Context(), name)
	if IsNotFound(err) {
		if !wasWebhook {
			return consumerNotFound(name)
		}
		err = nil // stopped before it registered
	}
	if err != nil {
		return apiError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resetBody is the body of POST /v1/consumers/{name}/reset.
type resetBody struct {
	// To is "beginning", "end", a position (a number or a string of
	// digits) or an RFC 3339 time.
	To json.RawMessage `json:"to"`
}

func (s *Server) resetConsumer(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var body resetBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	var to string
	if err := json.Unmarshal(body.To, &to); err != nil {
		var n json.Number
		if len(body.To) == 0 || json.Unmarshal(body.To, &n) != nil {
			return newError(http.StatusBadRequest, CodeInvalidField, "field \"to\" is required: \"beginning\", \"end\", a position or an RFC 3339 time")
		}
		to = n.String()
	}
	if err := s.local.ResetConsumer(r.Context(), name, to); err != nil {
		return err
	}
	c, err := s.local.Consumer(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) getDeadLetters(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		return err
	}
	dls, err := s.local.DeadLetters(r.Context(), r.PathValue("name"), int(min(limit, 1<<30)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeadLetterList{dls})
	return nil
}

func (s *Server) retryAllDeadLetters(w http.ResponseWriter, r *http.Request) error {
	n, err := s.local.RetryDeadLetters(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RetriedCount{n})
	return nil
}

func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) error {
	n, err := s.local.RetryDeadLetters(r.Context(), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RetriedCount{n})
	return nil
}

func (s *Server) discardAllDeadLetters(w http.ResponseWriter, r *http.Request) error {
	n, err := s.local.DiscardDeadLetters(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DiscardedCount{n})
	return nil
}

func (s *Server) discardDeadLetter(w http.ResponseWriter, r *http.Request) error {
	n, err := s.local.DiscardDeadLetters(r.Context(), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DiscardedCount{n})
	return nil
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) error {
	select {
	case <-s.stopping:
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the daemon is shutting down")
	default:
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	head, err := s.m.Store().Head(ctx)
	if err != nil {
		s.logger.Warn("monster: health check: the store does not answer", "error", err)
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the store does not answer: %s (the daemon's log has the details)", storeTrouble(err))
	}
	if f := s.shared.lastWriteFailure(); f != nil {
		// The store's words are in the log, where the failure was logged.
		return newError(http.StatusServiceUnavailable, CodeUnavailable,
			"the last write to the store failed at %s: %s; healthy again once a write succeeds",
			f.at.UTC().Format(time.RFC3339), storeTrouble(f.err))
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "head": head})
	return nil
}
