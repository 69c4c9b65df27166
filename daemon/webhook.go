package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// ConsumerSpec is a webhook consumer: the body of PUT /v1/consumers/{name}
// and an entry of the config file's "consumers".
type ConsumerSpec struct {
	// Types are the event types or globs the consumer subscribes to.
	Types []string `json:"types"`
	// Webhook is where each event is POSTed.
	Webhook WebhookSpec `json:"webhook"`
	// StartAt is where a new consumer starts: "beginning" (the default),
	// "end", a position or an RFC 3339 time. An existing consumer resumes
	// from its checkpoint; reset it to move it.
	StartAt string `json:"start_at,omitempty"`
	// Concurrency is how many deliveries run at once. Events with the same
	// key are still delivered one at a time, in order. Default 16.
	Concurrency int `json:"concurrency,omitempty"`
	// MaxAttempts is how many deliveries are tried before the event is
	// dead-lettered. Default 5.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// InitialBackoff is the delay before the first retry, doubling with
	// each attempt (with jitter) up to MaxBackoff. Defaults 1s and 1m.
	InitialBackoff Duration `json:"initial_backoff,omitempty"`
	MaxBackoff     Duration `json:"max_backoff,omitempty"`
}

// WebhookSpec is a webhook's target.
type WebhookSpec struct {
	// URL is an http or https URL. Required.
	URL string `json:"url"`
	// Secret signs each delivery: Monster-Signature is
	// "sha256=" + hex(HMAC-SHA256(body, secret)). Or set SecretEnv.
	Secret string `json:"secret,omitempty"`
	// SecretEnv names an environment variable holding the secret
	// (configuration file only).
	SecretEnv string `json:"secret_env,omitempty"`
	// Timeout bounds each delivery. Default 10s.
	Timeout Duration `json:"timeout,omitempty"`
}

// consumerNameSyntax is the library's rule for consumer names.
var consumerNameSyntax = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)

func (s *ConsumerSpec) validate(name string) error {
	if len(name) > 200 || !consumerNameSyntax.MatchString(name) {
		return newError(http.StatusBadRequest, CodeInvalidName, "consumer name %q: use letters, digits and '_', '-', '.', ':'", name)
	}
	if len(s.Types) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: field \"types\" is empty; subscribe to some types, such as [\"user.*\"]", name)
	}
	if err := checkPatterns("consumer "+strconv.Quote(name)+": type", s.Types); err != nil {
		return err
	}
	u, err := url.Parse(s.Webhook.URL)
	if s.Webhook.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: webhook.url %q: want an http:// or https:// URL", name, redactURL(s.Webhook.URL))
	}
	if s.Webhook.SecretEnv != "" && os.Getenv(s.Webhook.SecretEnv) == "" {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: webhook.secret_env: environment variable %s is empty", name, s.Webhook.SecretEnv)
	}
	if s.secret() == "" {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: webhook.secret is empty; receivers need it to check signatures", name)
	}
	if _, err := ParseStart(s.StartAt); err != nil {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: start_at: %s", name, err)
	}
	if s.Concurrency < 0 || s.Concurrency > 1024 {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: concurrency %d: want 1 to 1024", name, s.Concurrency)
	}
	if s.MaxAttempts < 0 {
		return newError(http.StatusBadRequest, CodeInvalidField, "consumer %q: max_attempts %d is negative", name, s.MaxAttempts)
	}
	return nil
}

func (s *ConsumerSpec) secret() string {
	if s.Webhook.SecretEnv != "" {
		return os.Getenv(s.Webhook.SecretEnv)
	}
	return s.Webhook.Secret
}

// Sign returns the Monster-Signature header value of a delivery body.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header is the Monster-Signature of body
// with secret, comparing in constant time.
func VerifySignature(body []byte, secret, header string) bool {
	return hmac.Equal([]byte(Sign(body, secret)), []byte(header))
}

// webhooks runs the webhook consumers in the daemon's Monster. Each is an
// ordinary monster consumer whose handler POSTs the event, so it gets the
// library's leases, checkpoints, retries with backoff and dead letters;
// it is created, changed and removed while the others keep going
// (Monster.RemoveConsumer, Monster.Consume).
type webhooks struct {
	m         *monster.Monster
	client    *http.Client
	metrics   *metrics
	logger    *slog.Logger
	stateFile string

	mu      sync.Mutex
	running map[string]*webhookConsumer
	closed  bool
}

type webhookConsumer struct {
	name   string
	spec   ConsumerSpec
	source string // "config" or "api"
}

// newWebhooks returns the webhook consumers of m, which must be running
// its consumers (Monster.Start) for them to run.
func newWebhooks(m *monster.Monster, logger *slog.Logger, met *metrics, stateFile string) *webhooks {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	return &webhooks{
		m: m, client: &http.Client{Transport: transport}, metrics: met,
		logger: logger, stateFile: stateFile, running: map[string]*webhookConsumer{},
	}
}

func (w *webhooks) info(name string) *WebhookInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.running[name]; ok {
		return &WebhookInfo{URL: redactURL(c.spec.Webhook.URL), Source: c.source}
	}
	return nil
}

// put creates or replaces a webhook consumer and starts it.
func (w *webhooks) put(ctx context.Context, name string, spec ConsumerSpec, source string) error {
	if err := spec.validate(name); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the daemon is shutting down")
	}
	if old, ok := w.running[name]; ok {
		if old.source == "config" && source == "api" {
			return newError(http.StatusConflict, CodeConflict, "consumer %q is declared in the configuration file; change it there", name)
		}
		if err := w.stopLocked(ctx, old); err != nil {
			return err
		}
	}
	c, err := w.start(ctx, name, spec, source)
	if err != nil {
		return err
	}
	w.running[name] = c
	if source == "api" {
		return w.saveLocked()
	}
	return nil
}

// remove stops a webhook consumer started over the API. It reports whether
// there was one.
func (w *webhooks) remove(ctx context.Context, name string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.running[name]
	if !ok {
		return false, nil
	}
	if c.source == "config" {
		return true, newError(http.StatusConflict, CodeConflict, "consumer %q is declared in the configuration file; remove it there", name)
	}
	if err := w.stopLocked(ctx, c); err != nil {
		return true, err
	}
	delete(w.running, name)
	return true, w.saveLocked()
}

// stopLocked stops a webhook consumer and forgets its declaration, so that
// it can be declared again.
func (w *webhooks) stopLocked(ctx context.Context, c *webhookConsumer) error {
	if err := w.m.RemoveConsumer(ctx, c.name); err != nil {
		return apiError(fmt.Errorf("monster: stopping webhook consumer %q: %w", c.name, err))
	}
	return nil
}

func (w *webhooks) start(ctx context.Context, name string, spec ConsumerSpec, source string) (*webhookConsumer, error) {
	start, err := ParseStart(spec.StartAt)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(spec.Webhook.Timeout)
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	concurrency := spec.Concurrency
	if concurrency <= 0 {
		concurrency = 16
	}
	retry := monster.RetryPolicy{MaxAttempts: spec.MaxAttempts, InitialBackoff: time.Duration(spec.InitialBackoff), MaxBackoff: time.Duration(spec.MaxBackoff)}
	if retry.InitialBackoff <= 0 {
		retry.InitialBackoff = time.Second
	}
	// Register the consumer now, so that "end" means the end when PUT
	// answers, not when the consumer's goroutines get going, and so that
	// the consumer is listed at once.
	if err := w.register(ctx, name, spec.Types, spec.StartAt); err != nil {
		return nil, err
	}
	d := newDelivery(name, spec.Webhook.URL, spec.secret(), w.client, w.metrics)
	var routes []monster.Handler
	for _, p := range spec.Types {
		routes = append(routes, monster.Match(p, d.deliver))
	}
	// Declared while the Monster runs its consumers, it starts at once.
	err = w.m.Consume(name, monster.Route(routes...), &monster.ConsumerOptions{
		Concurrency: concurrency, Partitions: webhookPartitions, StartAt: start, Retry: retry, Timeout: timeout,
		Middleware: []monster.HandlerMiddleware{w.metrics.handlerMiddleware(name)},
	})
	if err != nil {
		return nil, apiError(fmt.Errorf("monster: starting webhook consumer %q: %w", name, err))
	}
	return &webhookConsumer{name: name, spec: spec, source: source}, nil
}

// webhookPartitions is the partition count of webhook consumers.
const webhookPartitions = 16

// register creates the consumer in the store if it does not exist, with
// its checkpoints at start, and otherwise updates its types.
func (w *webhooks) register(ctx context.Context, name string, types []string, startAt string) error {
	st := w.m.Store()
	pos, err := startCheckpoint(ctx, st, startAt)
	if err == nil {
		// The partitioning the runtime asks for a consumer without OrderBy:
		// registered here first, the consumer keeps what this call stores.
		_, err = st.RegisterConsumer(ctx, store.ConsumerSpec{
			Name: name, Types: types, Partitions: webhookPartitions, Start: pos, Partitioning: store.PartitionByKeyOrID,
		})
	}
	if errors.Is(err, store.ErrConflict) {
		return newError(http.StatusConflict, CodeConflict, "consumer %q exists with another partition count; delete it or pick another name", name)
	}
	if err != nil {
		return apiError(fmt.Errorf("monster: registering webhook consumer %q: %w", name, err))
	}
	return nil
}

// startCheckpoint returns the checkpoint a new consumer starting at startAt
// (as ParseStart reads it) gets: the position after which it starts.
func startCheckpoint(ctx context.Context, st store.Store, startAt string) (int64, error) {
	switch strings.ToLower(startAt) {
	case "", "beginning":
		return 0, nil
	case "end":
		return st.Head(ctx)
	}
	if p, err := strconv.ParseInt(startAt, 10, 64); err == nil && p >= 1 {
		return p - 1, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, startAt); err == nil {
		return st.PositionBefore(ctx, t)
	}
	_, err := ParseStart(startAt)
	return 0, err
}

// close stops every webhook consumer, all at once: in-flight deliveries
// finish (or are cancelled when ctx ends) and progress is checkpointed.
func (w *webhooks) close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.running = map[string]*webhookConsumer{}
	w.mu.Unlock()
	return w.m.Stop(ctx)
}

// state is the state file: the webhook consumers created over the API.
type state struct {
	Consumers map[string]ConsumerSpec `json:"consumers"`
}

func (w *webhooks) saveLocked() error {
	if w.stateFile == "" {
		return nil
	}
	st := state{Consumers: map[string]ConsumerSpec{}}
	for name, c := range w.running {
		if c.source == "api" {
			st.Consumers[name] = c.spec
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := w.stateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return apiError(fmt.Errorf("monster: saving webhook consumers to %s: %w", w.stateFile, err))
	}
	if err := os.Rename(tmp, w.stateFile); err != nil {
		return apiError(fmt.Errorf("monster: saving webhook consumers to %s: %w", w.stateFile, err))
	}
	return nil
}

// loadState returns the webhook consumers saved in the state file.
func loadState(path string) (map[string]ConsumerSpec, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("monster: reading webhook consumers: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("monster: webhook consumers file %s: %w", filepath.Clean(path), err)
	}
	return st.Consumers, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// delivery POSTs events to one webhook.
type delivery struct {
	consumer string
	url      string
	shownURL string // url redacted, for errors (they reach logs and dead letters)
	secret   string
	client   *http.Client
	metrics  *metrics

	macs sync.Pool // of hash.Hash: HMAC-SHA256 keyed with secret
	// observers of the webhook duration histogram for the usual outcomes.
	okObs, errObs prometheus.Observer
}

func newDelivery(consumer, url, secret string, client *http.Client, met *metrics) *delivery {
	d := &delivery{consumer: consumer, url: url, shownURL: redactURL(url), secret: secret, client: client, metrics: met}
	d.macs.New = func() any { return hmac.New(sha256.New, []byte(secret)) }
	d.okObs = met.webhookDuration.WithLabelValues(consumer, "ok")
	d.errObs = met.webhookDuration.WithLabelValues(consumer, "error")
	return d
}

// sign is Sign(body, d.secret) with a pooled HMAC.
func (d *delivery) sign(body []byte) string {
	mac := d.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(body)
	var sum [sha256.Size]byte
	var out [len("sha256=") + 2*sha256.Size]byte
	copy(out[:], "sha256=")
	hex.Encode(out[len("sha256="):], mac.Sum(sum[:0]))
	d.macs.Put(mac)
	return string(out[:])
}

// maxErrorBody caps how much of a failed answer goes into the error.
const maxErrorBody = 512

func (d *delivery) deliver(ctx context.Context, e monster.RawEvent) error {
	attempt := e.Attempt
	e.Attempt = 0 // the body is the same on every attempt; the attempt is a header
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("monster: encoding event %s: %w", e.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("monster: webhook %s: %w", d.shownURL, withoutURL(err))
	}
	// Keys in canonical form, set at once: cheaper than Header.Set.
	req.Header = http.Header{
		"Content-Type":       {"application/json"},
		"User-Agent":         {"monster-webhook/1"},
		"Monster-Event-Id":   {e.ID},
		"Monster-Event-Type": {e.Type},
		"Monster-Consumer":   {d.consumer},
		"Monster-Attempt":    {strconv.Itoa(attempt)},
		"Monster-Signature":  {d.sign(body)},
	}
	began := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		d.errObs.Observe(time.Since(began).Seconds())
		return fmt.Errorf("monster: webhook %s: %w", d.shownURL, withoutURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // so the connection is reused
		d.metrics.observeWebhook(d.consumer, strconv.Itoa(resp.StatusCode), time.Since(began))
		err := fmt.Errorf("monster: webhook %s answered %s: %q", d.shownURL, resp.Status, bytes.TrimSpace(snippet))
		if resp.StatusCode == http.StatusUnprocessableEntity {
			// The receiver says no retry can help: dead-letter at once.
			return monster.Permanent(err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // so the connection is reused
	d.okObs.Observe(time.Since(began).Seconds())
	return nil
}
