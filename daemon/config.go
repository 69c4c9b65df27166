package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gomonster/monster"
)

// Defaults of Config.
const (
	DefaultAddr            = "127.0.0.1:7777"
	DefaultMaxEventBytes   = 1 << 20
	DefaultMaxRequestBytes = 16 << 20
	DefaultBodyReadTimeout = 30 * time.Second
)

// Config is the daemon's configuration: the --config file (JSON, or YAML
// when the name ends in .yaml or .yml) with the command line's flags laid
// over it. Every field's comment states its default.
type Config struct {
	// Addr is the address to listen on. Default DefaultAddr
	// (127.0.0.1:7777). Without Tokens it must be a loopback address.
	Addr string `json:"addr"`
	// Store is the store path or URL, as monster.Open takes it. Default
	// ./monster.db.
	Store string `json:"store"`
	// Tokens are the bearer tokens the API accepts. Default none: the API
	// is open, and only on loopback.
	Tokens []TokenConfig `json:"tokens"`
	// UndeclaredTypes is "allow" (the default) to accept events of types
	// not in Types, or "reject" to answer 422 undeclared_type.
	UndeclaredTypes string `json:"undeclared_types"`
	// Types declares event types, each with an optional JSON Schema its
	// data must satisfy.
	Types map[string]TypeConfig `json:"types"`
	// Consumers declares webhook consumers by name.
	Consumers map[string]ConsumerSpec `json:"consumers"`
	// MaxEventBytes caps one event's data and meta. Default 1 MiB.
	MaxEventBytes int `json:"max_event_bytes"`
	// MaxRequestBytes caps a request body. Default 16 MiB.
	MaxRequestBytes int `json:"max_request_bytes"`
	// BodyReadTimeout is the longest the daemon waits for the next bytes
	// of a request body: a client that announces a body and then sends
	// nothing for this long gets 408 request_timeout and its connection is
	// closed. It bounds silence, not the whole upload, so a slow but
	// steady upload of a large batch still succeeds. Requests without a
	// body (GET /v1/tail included) are not affected. Default 30s.
	BodyReadTimeout Duration `json:"body_read_timeout"`
	// StateFile keeps the webhook consumers created over the API (with
	// their secrets; written with mode 0600) across restarts. Default: the
	// store's file name plus ".webhooks.json" for a file store, none (they
	// last until the daemon stops) otherwise.
	StateFile string `json:"state_file"`
	// ShutdownTimeout bounds the graceful stop: in-flight requests and
	// deliveries. Default 30s.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// PollInterval is how often consumers and tails look for events logged
	// by other processes. Default 50ms.
	PollInterval Duration `json:"poll_interval"`
	// Verbose prints a line for every logged event. Default false.
	Verbose bool `json:"verbose"`
}

// TokenConfig is one bearer token.
type TokenConfig struct {
	// Name identifies the token in logs.
	Name string `json:"name"`
	// Token is the secret itself; or set TokenEnv.
	Token string `json:"token"`
	// TokenEnv names an environment variable holding the token.
	TokenEnv string `json:"token_env"`
	// Scopes are some of "log" (POST /v1/events), "read" (every GET) and
	// "admin" (everything, including resets, dead letters and webhook
	// consumers).
	Scopes []string `json:"scopes"`
}

// TypeConfig declares an event type.
type TypeConfig struct {
	// Schema is a JSON Schema (draft 2020-12 unless it says otherwise)
	// the event's data must satisfy. Default none: any JSON.
	Schema json.RawMessage `json:"schema"`
	// Description is for people.
	Description string `json:"description"`
}

// Duration is a time.Duration written as a Go duration string ("5s",
// "250ms") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "5s" or 5.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return fmt.Errorf("monster: duration %q: want a positive Go duration such as \"5s\"", s)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("monster: duration %s: want a string such as \"5s\" or a number of seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads a configuration file. Unknown fields are errors, so a
// typo does not silently change behaviour.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("monster: config: %w", err)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return cfg, fmt.Errorf("monster: config %s: %w", path, err)
		}
		if b, err = json.Marshal(v); err != nil {
			return cfg, fmt.Errorf("monster: config %s: %w", path, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("monster: config %s: %w", path, err)
	}
	return cfg, nil
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Store == "" {
		c.Store = monster.DefaultPath
	}
	if c.UndeclaredTypes == "" {
		c.UndeclaredTypes = "allow"
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = Duration(DefaultBodyReadTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = Duration(30 * time.Second)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = Duration(50 * time.Millisecond)
	}
	if c.StateFile == "" && !strings.Contains(c.Store, "://") {
		c.StateFile = c.Store + ".webhooks.json"
	} else if c.StateFile == "" && strings.HasPrefix(c.Store, "sqlite://") {
		c.StateFile = strings.TrimPrefix(c.Store, "sqlite://") + ".webhooks.json"
	}
	return c
}

// validate checks a configuration with defaults applied.
func (c Config) validate() error {
	switch c.UndeclaredTypes {
	case "allow", "reject":
	default:
		return fmt.Errorf("monster: config: undeclared_types %q: want \"allow\" or \"reject\"", c.UndeclaredTypes)
	}
	if len(c.Tokens) == 0 {
		if err := checkLoopback(c.Addr); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		secret, err := t.secret()
		if err != nil {
			return err
		}
		if secret == "" {
			return fmt.Errorf("monster: config: token %d (%q) has no token or token_env", i, t.Name)
		}
		if seen[secret] {
			return fmt.Errorf("monster: config: token %q is listed twice", t.Name)
		}
		seen[secret] = true
		if len(t.Scopes) == 0 {
			return fmt.Errorf("monster: config: token %q has no scopes; give it some of log, read, admin", t.Name)
		}
		for _, s := range t.Scopes {
			if _, ok := scopeNames[s]; !ok {
				return fmt.Errorf("monster: config: token %q: unknown scope %q; want log, read or admin", t.Name, s)
			}
		}
	}
	if c.MaxEventBytes > c.MaxRequestBytes {
		return fmt.Errorf("monster: config: max_event_bytes %d is over max_request_bytes %d", c.MaxEventBytes, c.MaxRequestBytes)
	}
	names := make([]string, 0, len(c.Consumers))
	for name := range c.Consumers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := c.Consumers[name]
		if err := spec.validate(name); err != nil {
			return fmt.Errorf("monster: config: %w", err)
		}
	}
	return nil
}

func (t TokenConfig) secret() (string, error) {
	if t.TokenEnv != "" {
		v := os.Getenv(t.TokenEnv)
		if v == "" {
			return "", fmt.Errorf("monster: config: token %q: environment variable %s is empty", t.Name, t.TokenEnv)
		}
		return v, nil
	}
	return t.Token, nil
}

// checkLoopback refuses an address that is not loopback-only.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("monster: listen address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("monster: refusing to listen on %q without a token: the API would be open to the network; "+
			"listen on 127.0.0.1 or configure tokens in the config file (see docs/http-api.md)", addr)
	}
	return nil
}
