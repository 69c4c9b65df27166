package daemon

import (
	"crypto/sha256"
	"net/http"
	"strings"
)

// Scope is a permission a token carries.
type Scope string

// Scopes. Admin allows everything.
const (
	ScopeLog   Scope = "log"   // POST /v1/events
	ScopeRead  Scope = "read"  // every GET, including /metrics and /v1/tail
	ScopeAdmin Scope = "admin" // everything: resets, dead letters, webhook consumers
)

var scopeNames = map[string]Scope{"log": ScopeLog, "read": ScopeRead, "admin": ScopeAdmin}

// tokens checks bearer tokens. Tokens are kept by their SHA-256, so a
// lookup's timing says nothing useful about a token's bytes.
type tokens struct {
	byHash map[[32]byte]tokenEntry
}

type tokenEntry struct {
	name   string
	scopes map[Scope]bool
}

func newTokens(cfg []TokenConfig) (*tokens, error) {
	t := &tokens{byHash: map[[32]byte]tokenEntry{}}
	for _, c := range cfg {
		secret, err := c.secret()
		if err != nil {
			return nil, err
		}
		e := tokenEntry{name: c.Name, scopes: map[Scope]bool{}}
		for _, s := range c.Scopes {
			e.scopes[scopeNames[s]] = true
		}
		t.byHash[sha256.Sum256([]byte(secret))] = e
	}
	return t, nil
}

// check returns nil if r may use a route needing scope, or the 401/403
// error to answer.
func (t *tokens) check(r *http.Request, scope Scope) *Error {
	if len(t.byHash) == 0 {
		return nil // no tokens: open API, loopback only
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token: send \"Authorization: Bearer TOKEN\"")
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "Authorization header must be \"Bearer TOKEN\"")
	}
	e, ok := t.byHash[sha256.Sum256([]byte(strings.TrimSpace(secret)))]
	if !ok {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "unknown bearer token")
	}
	if !e.scopes[scope] && !e.scopes[ScopeAdmin] {
		return newError(http.StatusForbidden, CodeForbidden, "token %q lacks scope %q needed for %s %s", e.name, scope, r.Method, r.URL.Path)
	}
	return nil
}
