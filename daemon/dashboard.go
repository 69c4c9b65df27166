package daemon

import (
	_ "embed"
	"net/http"
)

// dashboardPath is the dashboard's route: "/" and nothing under it.
const dashboardPath = "/{$}"

// dashboardHTML is the web dashboard: one self-contained page (inline CSS
// and plain JavaScript, no external assets) that polls /v1/types,
// /v1/consumers and /v1/events and follows /v1/tail.
//
//go:embed dashboard.html
var dashboardHTML []byte

// getDashboard serves the dashboard page. It needs no token: when tokens
// are configured the page asks for one and sends it on its requests.
func (s *Server) getDashboard(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(dashboardHTML)
	}
	return nil
}
