package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client runs Operations on a daemon over HTTP. Every error answer becomes
// an *Error with the daemon's status, code and message.
type Client struct {
	// BaseURL is the daemon's URL, such as "http://127.0.0.1:7777".
	BaseURL string
	// Token is the bearer token, if the daemon wants one.
	Token string
	// HTTP is the client used; default http.DefaultClient.
	HTTP *http.Client
}

// NewClient returns a Client for the daemon at baseURL.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("monster: encoding request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, r)
	if err != nil {
		return nil, fmt.Errorf("monster: server URL %q: %w", c.BaseURL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends a request and decodes a 2xx answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("monster: %s %s: %w", method, c.BaseURL+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("monster: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body errorBody
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Message != "" {
		body.Error.Status = resp.StatusCode
		return body.Error
	}
	return &Error{Status: resp.StatusCode, Code: CodeInternal,
		Message: fmt.Sprintf("monster: %s %s answered %s: %q", resp.Request.Method, resp.Request.URL, resp.Status, bytes.TrimSpace(b))}
}

// Log implements Operations. The daemon answers each stored event's id,
// type, position and time; Log completes them with the key, data and meta
// sent. An event with an idempotency key may have been stored earlier with
// other data, so Log reads those events back from the daemon.
func (c *Client) Log(ctx context.Context, events []NewEvent) ([]Event, error) {
	var stored []StoredEvent
	if len(events) == 1 {
		var e StoredEvent
		if err := c.do(ctx, http.MethodPost, "/v1/events", events[0], &e); err != nil {
			return nil, err
		}
		stored = []StoredEvent{e}
	} else {
		var out struct {
			Events []StoredEvent `json:"events"`
		}
		err := c.do(ctx, http.MethodPost, "/v1/events", struct {
			Events []NewEvent `json:"events"`
		}{events}, &out)
		if err != nil {
			return nil, err
		}
		stored = out.Events
	}
	if len(stored) != len(events) {
		return nil, fmt.Errorf("monster: POST /v1/events: %d events sent, %d in the answer", len(events), len(stored))
	}
	out := make([]Event, len(events))
	for i, s := range stored {
		if events[i].IdempotencyKey != "" {
			e, err := c.Event(ctx, s.ID)
			if err != nil {
				return nil, err
			}
			out[i] = e
			continue
		}
		out[i] = Event{ID: s.ID, Type: s.Type, Position: s.Position, Time: s.Time,
			Key: events[i].Key, Data: events[i].Data}
		if len(events[i].Meta) > 0 {
			out[i].Meta = events[i].Meta
		}
	}
	return out, nil
}

// Events implements Operations.
func (c *Client) Events(ctx context.Context, q EventsQuery) (EventsPage, error) {
	v := url.Values{}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.After != 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var page EventsPage
	err := c.do(ctx, http.MethodGet, "/v1/events?"+v.Encode(), nil, &page)
	return page, err
}

// Event implements Operations.
func (c *Client) Event(ctx context.Context, id string) (Event, error) {
	var e Event
	err := c.do(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, &e)
	return e, err
}

// Types implements Operations.
func (c *Client) Types(ctx context.Context) ([]TypeInfo, error) {
	var out TypeList
	err := c.do(ctx, http.MethodGet, "/v1/types", nil, &out)
	return out.Types, err
}

// Tail implements Operations with GET /v1/tail. It does not reconnect: a
// dropped connection ends it with an error.
func (c *Client) Tail(ctx context.Context, q TailQuery, fn func(Event) error) error {
	v := url.Values{}
	if len(q.Types) > 0 {
		v.Set("types", strings.Join(q.Types, ","))
	}
	if q.After >= 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/tail?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("monster: tail %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue
			}
			var e Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("monster: tail: bad event from the server: %w", err)
			}
			data = data[:0]
			if err := fn(e); err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("monster: tail: %w", err)
	}
	return fmt.Errorf("monster: tail: the server closed the stream")
}

// Consumers implements Operations.
func (c *Client) Consumers(ctx context.Context) ([]Consumer, error) {
	var out ConsumerList
	err := c.do(ctx, http.MethodGet, "/v1/consumers", nil, &out)
	return out.Consumers, err
}

// Consumer implements Operations.
func (c *Client) Consumer(ctx context.Context, name string) (Consumer, error) {
	var out Consumer
	err := c.do(ctx, http.MethodGet, "/v1/consumers/"+url.PathEscape(name), nil, &out)
	return out, err
}

// ResetConsumer implements Operations.
func (c *Client) ResetConsumer(ctx context.Context, name, to string) error {
	return c.do(ctx, http.MethodPost, "/v1/consumers/"+url.PathEscape(name)+"/reset", map[string]string{"to": to}, nil)
}

// DeadLetters implements Operations.
func (c *Client) DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error) {
	path := "/v1/consumers/" + url.PathEscape(consumer) + "/dead"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out DeadLetterList
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out.DeadLetters, err
}

// RetryDeadLetters implements Operations.
func (c *Client) RetryDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error) {
	base := "/v1/consumers/" + url.PathEscape(consumer) + "/dead"
	var out RetriedCount
	if len(ids) == 0 {
		err := c.do(ctx, http.MethodPost, base+"/retry", nil, &out)
		return out.Retried, err
	}
	total := 0
	for _, id := range ids {
		if err := c.do(ctx, http.MethodPost, base+"/"+url.PathEscape(id)+"/retry", nil, &out); err != nil {
			return total, err
		}
		total += out.Retried
	}
	return total, nil
}

// DiscardDeadLetters implements Operations.
func (c *Client) DiscardDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error) {
	base := "/v1/consumers/" + url.PathEscape(consumer) + "/dead"
	var out DiscardedCount
	if len(ids) == 0 {
		err := c.do(ctx, http.MethodDelete, base, nil, &out)
		return out.Discarded, err
	}
	total := 0
	for _, id := range ids {
		if err := c.do(ctx, http.MethodDelete, base+"/"+url.PathEscape(id), nil, &out); err != nil {
			return total, err
		}
		total += out.Discarded
	}
	return total, nil
}

// PutConsumer creates or updates a webhook consumer.
func (c *Client) PutConsumer(ctx context.Context, name string, spec ConsumerSpec) (PutConsumerResult, error) {
	var out PutConsumerResult
	err := c.do(ctx, http.MethodPut, "/v1/consumers/"+url.PathEscape(name), spec, &out)
	return out, err
}

// DeleteConsumer removes a consumer (stopping its webhook, if any).
func (c *Client) DeleteConsumer(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/consumers/"+url.PathEscape(name), nil, nil)
}

var (
	_ Operations = (*Client)(nil)
	_ Operations = (*Local)(nil)
)
