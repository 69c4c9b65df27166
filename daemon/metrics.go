package daemon

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gomonster/monster"
)

// metrics are the daemon's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry        *prometheus.Registry
	eventsLogged    *prometheus.CounterVec
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	handlerDuration *prometheus.HistogramVec
	webhookDuration *prometheus.HistogramVec

	mu     sync.RWMutex
	byType map[string]prometheus.Counter // eventsLogged by type
}

func newMetrics(m *monster.Monster, shared *sharedStore) *metrics {
	met := &metrics{
		byType:   map[string]prometheus.Counter{},
		registry: prometheus.NewRegistry(),
		eventsLogged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monster_events_logged_total", Help: "Events logged through this daemon, by type.",
		}, []string{"type"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "monster_http_requests_total", Help: "HTTP requests, by route and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "monster_http_request_duration_seconds", Help: "HTTP request durations, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
		handlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "monster_handler_duration_seconds", Help: "Consumer handler runs, by consumer and outcome (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"consumer", "outcome"}),
		webhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "monster_webhook_duration_seconds", Help: "Webhook deliveries, by consumer and outcome (ok, an HTTP status, or error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"consumer", "outcome"}),
	}
	met.registry.MustRegister(met.eventsLogged, met.httpRequests, met.httpDuration, met.handlerDuration, met.webhookDuration,
		&storeCollector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if shared != nil {
		met.registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "monster_store_appends_total",
				Help: "Appends to the store by this daemon: group commits, one transaction and sync each.",
			}, func() float64 { return float64(shared.appends.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "monster_store_appended_events_total",
				Help: "Events those appends stored; divided by monster_store_appends_total, the events per group commit.",
			}, func() float64 { return float64(shared.appended.Load()) }))
	}
	return met
}

func (met *metrics) handler() http.Handler {
	return promhttp.HandlerFor(met.registry, promhttp.HandlerOpts{})
}

// logged counts stored events by type. Runs of one type (the usual batch)
// cost one counter update.
func (met *metrics) logged(events []Event) {
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].Type == events[i].Type {
			j++
		}
		met.loggedCounter(events[i].Type).Add(float64(j - i))
		i = j
	}
}

// loggedCounter returns the events-logged counter of a type, looked up in
// the vector once per type.
func (met *metrics) loggedCounter(typ string) prometheus.Counter {
	met.mu.RLock()
	c, ok := met.byType[typ]
	met.mu.RUnlock()
	if ok {
		return c
	}
	c = met.eventsLogged.WithLabelValues(typ)
	met.mu.Lock()
	met.byType[typ] = c
	met.mu.Unlock()
	return c
}

// routeMetrics are one route's request counters and duration histogram,
// looked up in their vectors once.
type routeMetrics struct {
	route    string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	byCode   [600]atomic.Pointer[prometheus.Counter]
}

func (met *metrics) route(route string) *routeMetrics {
	return &routeMetrics{route: route, requests: met.httpRequests, duration: met.httpDuration.WithLabelValues(route)}
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.counter(code).Inc()
	rm.duration.Observe(d.Seconds())
}

func (rm *routeMetrics) counter(code int) prometheus.Counter {
	if code < 0 || code >= len(rm.byCode) {
		return rm.requests.WithLabelValues(rm.route, strconv.Itoa(code))
	}
	if c := rm.byCode[code].Load(); c != nil {
		return *c
	}
	c := rm.requests.WithLabelValues(rm.route, strconv.Itoa(code))
	rm.byCode[code].Store(&c)
	return c
}

func (met *metrics) observeWebhook(consumer, outcome string, d time.Duration) {
	met.webhookDuration.WithLabelValues(consumer, outcome).Observe(d.Seconds())
}

func (met *metrics) handlerMiddleware(consumer string) monster.HandlerMiddleware {
	ok := met.handlerDuration.WithLabelValues(consumer, "ok")
	failed := met.handlerDuration.WithLabelValues(consumer, "error")
	return func(next monster.HandlerFunc) monster.HandlerFunc {
		return func(ctx context.Context, e monster.RawEvent) error {
			began := time.Now()
			err := next(ctx, e)
			if err != nil {
				failed.Observe(time.Since(began).Seconds())
			} else {
				ok.Observe(time.Since(began).Seconds())
			}
			return err
		}
	}
}

// storeCollector reads the store's figures at scrape time: the head, the
// events per type, and every consumer's position, lag, in-flight count,
// failures and dead letters (those of consumers in other processes too).
type storeCollector struct{ m *monster.Monster }

var (
	descHead        = prometheus.NewDesc("monster_head_position", "Position of the last event in the store.", nil, nil)
	descStored      = prometheus.NewDesc("monster_events_stored", "Events in the store, by type.", []string{"type"}, nil)
	descPosition    = prometheus.NewDesc("monster_consumer_position", "A consumer's position: everything up to it is handled or dead-lettered.", []string{"consumer"}, nil)
	descLag         = prometheus.NewDesc("monster_consumer_lag", "Events of a consumer's types after its position.", []string{"consumer"}, nil)
	descInFlight    = prometheus.NewDesc("monster_consumer_in_flight", "Events a consumer is handling or retrying.", []string{"consumer"}, nil)
	descFailures    = prometheus.NewDesc("monster_consumer_failures_total", "Failed handler runs of a consumer, retried or not.", []string{"consumer"}, nil)
	descDeadLetters = prometheus.NewDesc("monster_consumer_dead_letters", "A consumer's dead letters.", []string{"consumer"}, nil)
	descUp          = prometheus.NewDesc("monster_store_up", "1 if the store answered the scrape's queries.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHead, descStored, descPosition, descLag, descInFlight, descFailures, descDeadLetters, descUp} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.m.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(stats.Head))
	for typ, n := range stats.Types {
		ch <- prometheus.MustNewConstMetric(descStored, prometheus.GaugeValue, float64(n), typ)
	}
	for _, cs := range stats.Consumers {
		ch <- prometheus.MustNewConstMetric(descPosition, prometheus.GaugeValue, float64(cs.Position), cs.Name)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(cs.Lag), cs.Name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(cs.InFlight), cs.Name)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(cs.Failures), cs.Name)
		ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.GaugeValue, float64(cs.DeadLetters), cs.Name)
	}
}
