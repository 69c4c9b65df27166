package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dashboardHarness runs the dashboard's script in Node with just enough of
// a DOM for it, against a real server: argv is the base URL, a read token
// and an admin token. It checks the page asks for a token, then enters it,
// waits for the tables and for the tail to show an event it logs once the
// tail is connected, and prints what the page shows as JSON.
const dashboardHarness = `
"use strict";
const [base, readToken, adminToken] = process.argv.slice(2);
const fs = require("fs");
const html = fs.readFileSync(process.argv[5], "utf8");
const script = html.slice(html.indexOf("<script>") + 8, html.indexOf("</script>"));

class Node_ {
  constructor(tag) { this.tag = tag; this.childNodes = []; this.listeners = {}; this.hidden = false; this.className = ""; this.value = ""; this._text = ""; }
  get firstChild() { return this.childNodes[0] || null; }
  get lastChild() { return this.childNodes[this.childNodes.length - 1] || null; }
  appendChild(n) { this.childNodes.push(n); return n; }
  insertBefore(n, ref) { const i = ref ? this.childNodes.indexOf(ref) : -1; if (i < 0) this.childNodes.push(n); else this.childNodes.splice(i, 0, n); return n; }
  removeChild(n) { this.childNodes.splice(this.childNodes.indexOf(n), 1); return n; }
  insertRow() { return this.appendChild(new Node_("tr")); }
  get textContent() { return this.childNodes.length ? this.childNodes.map((c) => c.textContent).join(this.tag === "tr" ? "|" : "\n") : this._text; }
  set textContent(v) { this.childNodes = []; this._text = String(v); }
  addEventListener(ev, fn) { this.listeners[ev] = fn; }
  focus() {}
}
const byID = {};
const el = (id) => byID[id] || (byID[id] = new Node_("div"));
const headers = { types: 5, consumers: 8, events: 5 };
global.document = {
  getElementById: el,
  querySelector: (sel) => el(sel.slice(1).split(" ")[0] + "/tbody"),
  querySelectorAll: (sel) => new Array(headers[sel.slice(1).split(" ")[0]] || 1),
  createElement: (tag) => new Node_(tag),
  createTextNode: (t) => { const n = new Node_("#text"); n._text = t; return n; },
};
el("login").hidden = true;
const store = {};
global.sessionStorage = { getItem: (k) => store[k] ?? null, setItem: (k, v) => { store[k] = String(v); } };
const realFetch = fetch;
let tailConnected = false;
global.fetch = async (path, opts) => {
  const resp = await realFetch(base + path, opts);
  if (path.startsWith("/v1/tail") && resp.ok && !tailConnected) {
    tailConnected = true;
    // Logged once the stream is open: the tail must show it.
    await realFetch(base + "/v1/events", { method: "POST", headers: { "Authorization": "Bearer " + adminToken },
      body: JSON.stringify({ type: "tail.seen", data: { n: 42 } }) });
  }
  return resp;
};

const out = { askedForToken: false };
(0, eval)(script);
const deadline = Date.now() + 20000;
(function poll() {
  if (!out.askedForToken && !el("login").hidden) {
    out.askedForToken = true;
    out.loginMessage = el("status").textContent;
    el("token").value = readToken;
    el("login").listeners.submit({ preventDefault() {} });
  }
  const tail = el("tail-log").textContent;
  if (out.askedForToken && tail.includes("tail.seen") || Date.now() > deadline) {
    out.types = el("types/tbody").childNodes.map((r) => r.textContent);
    out.consumers = el("consumers/tbody").childNodes.map((r) => r.textContent);
    out.events = el("events/tbody").childNodes.map((r) => r.textContent);
    out.tail = tail;
    out.status = el("status").textContent;
    out.head = el("head").textContent;
    out.storedToken = store["monster-token"] || "";
    process.stdout.write(JSON.stringify(out));
    process.exit(0);
  }
  setTimeout(poll, 20);
})();
`

// TestDashboardScriptInNode runs the dashboard's JavaScript (in Node, with
// a stub DOM) against the real server with tokens configured.
func TestDashboardScriptInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	b := setup(t, Config{Tokens: []TokenConfig{
		{Name: "dashboard", Token: "read-token", Scopes: []string{"read"}},
		{Name: "ops", Token: "admin-token", Scopes: []string{"admin"}},
	}})
	receiver := httptestServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()
	status, body := b.call(t, "PUT", "/v1/consumers/mailer", "admin-token", ConsumerSpec{
		Types: []string{"user.*"}, Webhook: WebhookSpec{URL: receiver.URL + "/hook", Secret: "s"}})
	if status != 201 {
		t.Fatalf("PUT consumer: %d %s", status, body)
	}
	for i := range 3 {
		status, body := b.call(t, "POST", "/v1/events", "admin-token", map[string]any{"type": "user.signed_up", "key": "k", "data": map[string]int{"i": i}})
		if status != 201 {
			t.Fatalf("log: %d %s", status, body)
		}
	}

	dir := t.TempDir()
	harness, page := filepath.Join(dir, "harness.js"), filepath.Join(dir, "dashboard.html")
	writeFile(t, harness, dashboardHarness)
	if err := os.WriteFile(page, dashboardHTML, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, harness, b.url, "read-token", "admin-token", page).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var got struct {
		AskedForToken bool     `json:"askedForToken"`
		LoginMessage  string   `json:"loginMessage"`
		Types         []string `json:"types"`
		Consumers     []string `json:"consumers"`
		Events        []string `json:"events"`
		Tail          string   `json:"tail"`
		Status        string   `json:"status"`
		Head          string   `json:"head"`
		StoredToken   string   `json:"storedToken"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("harness output %s: %v", out, err)
	}
	t.Logf("the page shows: %+v", got)
	if !got.AskedForToken || got.StoredToken != "read-token" {
		t.Errorf("the page did not ask for a token and keep it: asked %v, stored %q", got.AskedForToken, got.StoredToken)
	}
	if !strings.Contains(got.Tail, "tail.seen") || !strings.Contains(got.Tail, `{"n":42}`) {
		t.Errorf("the tail shows %q, want the tail.seen event", got.Tail)
	}
	if !strings.HasPrefix(got.Status, "updated") {
		t.Errorf("status %q, want \"updated ...\"", got.Status)
	}
	if !slices.ContainsFunc(got.Types, func(row string) bool { return strings.HasPrefix(row, "user.signed_up|3|3|") }) {
		t.Errorf("types table %q, want user.signed_up with 3 events", got.Types)
	}
	if len(got.Consumers) != 1 || !strings.HasPrefix(got.Consumers[0], "mailer|user.*|") || !strings.HasSuffix(got.Consumers[0], "|"+receiver.URL+"/hook") {
		t.Errorf("consumers table %q, want the mailer webhook", got.Consumers)
	}
	if len(got.Events) < 3 || !strings.Contains(strings.Join(got.Events, "\n"), `user.signed_up|k|{"i":2}`) {
		t.Errorf("events table %q, want the three user.signed_up events", got.Events)
	}
}
