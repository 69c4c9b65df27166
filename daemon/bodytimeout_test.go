package daemon

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client that announces a body and then stops sending is answered 408
// and disconnected after body_read_timeout, instead of holding the
// connection forever.
func TestSilentBodyTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{BodyReadTimeout: Duration(300 * time.Millisecond)})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":"); err != nil {
		t.Fatal(err)
	}
	// Far past the timeout: without it the daemon never answers.
	if err := conn.SetReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body that stopped arriving: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp.StatusCode, body, http.StatusRequestTimeout, CodeRequestTimeout, "body_read_timeout", "300ms")
	// And the connection is closed, not kept for another request.
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection still open after the timeout: read %d bytes, %v", n, err)
	}
}

// The timeout bounds silence, not the upload: a body that keeps arriving
// for longer than body_read_timeout in total is read and stored.
func TestSlowSteadyBodyIsAccepted(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	b := setup(t, Config{BodyReadTimeout: Duration(timeout)})
	pr, pw := io.Pipe()
	body := `{"type":"slow.upload","data":{"text":"` + strings.Repeat("x", 64) + `"}}`
	go func() {
		// Eight pieces, a fifth of the timeout apart: 1.6 s in all.
		step := (len(body) + 7) / 8
		for i := 0; i < len(body); i += step {
			if i > 0 {
				time.Sleep(timeout / 5) // pacing a slow client, not synchronisation
			}
			if _, err := io.WriteString(pw, body[i:min(i+step, len(body))]); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequest("POST", b.url+"/v1/events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	began := time.Now()
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow upload answered %d %s", resp.StatusCode, got)
	}
	if took := time.Since(began); took <= timeout {
		t.Fatalf("the upload took %v, not longer than the timeout %v: the test proves nothing", took, timeout)
	}
}

// A tail has no body: it outlives body_read_timeout and still streams.
func TestTailOutlivesBodyReadTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	b := setup(t, Config{BodyReadTimeout: Duration(timeout)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/v1/tail?types=late.*", nil)
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Scan()            // the opening comment: the tail is running
	time.Sleep(3 * timeout) // let the timeout pass while the tail is idle
	logN(t, b, 1, func(int) string { return "late.event" })
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "data: ") {
			if !strings.Contains(lines.Text(), `"late.event"`) {
				t.Fatalf("tail sent %s", lines.Text())
			}
			return
		}
	}
	t.Fatalf("tail ended after the body read timeout: %v", lines.Err())
}
