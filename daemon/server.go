package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Server is the daemon: the HTTP API of docs/http-api.md on a Monster, and
// the webhook consumers. Create one with New, run it with Serve.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	inner    store.Store
	shared   *sharedStore // inner, as every Monster of the daemon sees it
	m        *monster.Monster
	local    *Local
	webhooks *webhooks
	metrics  *metrics
	tokens   *tokens
	handler  http.Handler

	stopping     chan struct{} // closed when shutdown begins: ends tails
	shutdownOnce sync.Once
	shutdownErr  error
}

// New opens the configured store, declares the configured types and starts
// the webhook consumers (those of the configuration file and those created
// over the API in earlier runs). logger may be nil for slog.Default().
//
// It returns an error, and starts nothing, for an invalid configuration:
// among others a non-loopback Addr without tokens.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	toks, err := newTokens(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	saved, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	inner, err := monster.OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	shared := newSharedStore(inner)
	opts := monster.Options{
		DisallowUndeclared: cfg.UndeclaredTypes == "reject",
		MaxEventSize:       cfg.MaxEventBytes,
		Logger:             logger,
		PollInterval:       time.Duration(cfg.PollInterval),
		ShutdownTimeout:    time.Duration(cfg.ShutdownTimeout),
		Verbose:            cfg.Verbose,
	}
	m := monster.New(shared.store(), &opts)
	s := &Server{cfg: cfg, logger: logger, inner: inner, shared: shared, m: m, tokens: toks, stopping: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		_ = m.Close()
		_ = inner.Close()
		return nil, err
	}
	declared, err := declareTypes(m, cfg.Types)
	if err != nil {
		return fail(err)
	}
	s.metrics = newMetrics(m, shared)
	// The webhook consumers run in m, started and stopped one by one.
	if err := m.Start(context.WithoutCancel(ctx)); err != nil {
		return fail(err)
	}
	s.webhooks = newWebhooks(m, logger, s.metrics, cfg.StateFile)
	s.local = &Local{m: m, declared: declared, webhooks: s.webhooks, poll: time.Duration(cfg.PollInterval), onLog: s.metrics.logged}
	for _, name := range sortedNames(cfg.Consumers) {
		if err := s.webhooks.put(ctx, name, cfg.Consumers[name], "config"); err != nil {
			_ = s.webhooks.close(ctx)
			return fail(fmt.Errorf("monster: config: %w", err))
		}
	}
	for _, name := range sortedNames(saved) {
		if _, inConfig := cfg.Consumers[name]; inConfig {
			logger.Warn("monster: webhook consumer in the state file is also in the config file; using the config file's", "consumer", name)
			continue
		}
		if err := s.webhooks.put(ctx, name, saved[name], "api"); err != nil {
			logger.Error("monster: cannot restart webhook consumer from the state file", "consumer", name, "file", cfg.StateFile, "error", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Local returns the operations the server runs, on its Monster.
func (s *Server) Local() *Local { return s.local }

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx ends, then shuts down gracefully
// (see Shutdown) and returns nil, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	close(s.stopping) // tails end, so Shutdown does not wait for them
	herr := srv.Shutdown(shutdownCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, herr, s.Shutdown(shutdownCtx))
}

// Shutdown stops the webhook consumers (in-flight deliveries finish,
// progress is checkpointed) and closes the store. Serve calls it; call it
// yourself only when serving the Handler some other way.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		select {
		case <-s.stopping:
		default:
			close(s.stopping)
		}
		s.shutdownErr = errors.Join(s.webhooks.close(ctx), s.m.Close(), s.inner.Close())
	})
	return s.shutdownErr
}

// handlerFunc is a route's handler; an error becomes the JSON error answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type method struct {
	scope Scope
	fn    handlerFunc
}

func (s *Server) routes() http.Handler {
	type route struct {
		method, path string
		scope        Scope
		fn           handlerFunc
	}
	table := []route{
		{"POST", "/v1/events", ScopeLog, s.postEvents},
		{"GET", "/v1/events", ScopeRead, s.getEvents},
		{"GET", "/v1/events/{id}", ScopeRead, s.getEvent},
		{"GET", "/v1/types", ScopeRead, s.getTypes},
		{"GET", "/v1/tail", ScopeRead, s.getTail},
		{"GET", "/v1/consumers", ScopeRead, s.getConsumers},
		{"GET", "/v1/consumers/{name}", ScopeRead, s.getConsumer},
		{"PUT", "/v1/consumers/{name}", ScopeAdmin, s.putConsumer},
		{"DELETE", "/v1/consumers/{name}", ScopeAdmin, s.deleteConsumer},
		{"POST", "/v1/consumers/{name}/reset", ScopeAdmin, s.resetConsumer},
		{"GET", "/v1/consumers/{name}/dead", ScopeRead, s.getDeadLetters},
		{"DELETE", "/v1/consumers/{name}/dead", ScopeAdmin, s.discardAllDeadLetters},
		{"POST", "/v1/consumers/{name}/dead/retry", ScopeAdmin, s.retryAllDeadLetters},
		{"POST", "/v1/consumers/{name}/dead/{id}/retry", ScopeAdmin, s.retryDeadLetter},
		{"DELETE", "/v1/consumers/{name}/dead/{id}", ScopeAdmin, s.discardDeadLetter},
		{"GET", "/metrics", ScopeRead, s.getMetrics},
		{"GET", "/healthz", "", s.getHealth},
		// The dashboard page needs no token: it asks for one and sends it
		// on its own requests.
		{"GET", dashboardPath, "", s.getDashboard},
	}
	byPath := map[string]map[string]method{}
	var paths []string
	for _, rt := range table {
		if byPath[rt.path] == nil {
			byPath[rt.path] = map[string]method{}
			paths = append(paths, rt.path)
		}
		byPath[rt.path][rt.method] = method{rt.scope, rt.fn}
	}
	mux := http.NewServeMux()
	for _, path := range paths {
		mux.Handle(path, s.dispatch(path, byPath[path]))
	}
	mux.Handle("/", s.dispatch("/", nil))
	return mux
}

// dispatch picks the method's handler, checks the token's scope, answers
// errors as JSON and records metrics.
func (s *Server) dispatch(route string, methods map[string]method) http.Handler {
	var allow []string
	for m := range methods {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	allowHeader := ""
	for i, m := range allow {
		if i > 0 {
			allowHeader += ", "
		}
		allowHeader += m
	}
	rm := s.metrics.route(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := statusRecorder{ResponseWriter: w}
		err := s.serveRoute(&rec, r, route, methods, allowHeader)
		if err != nil {
			writeError(&rec, err)
			if e := apiError(err); e.Status >= 500 && r.Context().Err() == nil { // not when the client left
				s.logger.Error("monster: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			}
		}
		rm.observe(rec.status(), time.Since(began))
	})
}

func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, route string, methods map[string]method, allow string) error {
	if methods == nil {
		return newError(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s (see docs/http-api.md)", r.Method, r.URL.Path)
	}
	m, ok := methods[r.Method]
	if !ok && r.Method == http.MethodHead {
		m, ok = methods[http.MethodGet]
	}
	if !ok {
		w.Header().Set("Allow", allow)
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, route, allow)
	}
	if m.scope != "" {
		if err := s.tokens.check(r, m.scope); err != nil {
			if err.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="monster"`)
			}
			return err
		}
	}
	return m.fn(w, r)
}

// statusRecorder remembers the status written, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

func writeError(w http.ResponseWriter, err error) {
	e := apiError(err)
	if e.Status == http.StatusInternalServerError && e.err != nil {
		// Store errors can carry details an API user has no use for; the
		// log has them.
		e = &Error{Status: e.Status, Code: e.Code, Message: "monster: internal error: " + e.Message}
	}
	writeJSON(w, e.Status, errorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
