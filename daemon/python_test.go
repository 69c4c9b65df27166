package daemon

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestPythonClient runs the stdlib-only Python client's shoe-store demo
// against the real server: it logs events, registers a webhook consumer
// served by the same script, and checks every delivery's signature.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	b := setup(t, Config{
		Tokens: []TokenConfig{{Name: "shop", Token: "py-token", Scopes: []string{"admin"}}},
		Types: map[string]TypeConfig{"shoestore.product_viewed": {Schema: json.RawMessage(
			`{"type":"object","required":["user","product","source"],"properties":{"user":{"type":"string"},"product":{"type":"string"},"source":{"type":"string"}}}`)}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script := filepath.Join("..", "clients", "python", "shoestore_demo.py")
	cmd := exec.CommandContext(ctx, python, script, "--server", b.url, "--token", "py-token", "--views", "30")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python demo: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var summary struct {
		Delivered     int            `json:"delivered"`
		Views         map[string]int `json:"views"`
		BadSignatures int            `json:"bad_signatures"`
		ForgedStatus  int            `json:"forged_status"`
		BadRequest    struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"bad_request"`
	}
	if err := json.Unmarshal(out, &summary); err != nil {
		t.Fatalf("demo output %s: %v", out, err)
	}
	if summary.Delivered != 33 || summary.Views["red-shoe"] != 13 || summary.Views["green-boot"] != 10 ||
		summary.ForgedStatus != 401 || summary.BadRequest.Status != 400 || summary.BadRequest.Code != CodeInvalidField {
		t.Fatalf("summary %+v", summary)
	}
	// The demo removed its consumer.
	if _, err := (&Client{BaseURL: b.url, Token: "py-token", HTTP: b.http}).Consumer(ctx, "shoestore.views-counter"); !IsNotFound(err) {
		t.Errorf("consumer after the demo: %v", err)
	}
}
