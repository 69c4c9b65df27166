"""A Python 3 client for Monster's HTTP API, using only the standard library.

    from monster_client import MonsterClient, verify_signature

    client = MonsterClient("http://127.0.0.1:7777", token=None)
    event = client.log("shoestore.product_viewed",
                       {"user": "ada", "product": "red-shoe", "source": "catalog"})
    print(event["id"], event["position"])

Webhook receivers check each delivery with verify_signature(body, secret,
headers["Monster-Signature"]). See docs/http-api.md.
"""

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request


class MonsterError(Exception):
    """An error answer from the daemon: status, code and message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def sign(body, secret):
    """Return the Monster-Signature header value for a delivery body."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(body, secret, header):
    """Check a delivery's Monster-Signature header, in constant time."""
    return hmac.compare_digest(sign(body, secret), header or "")


class MonsterClient:
    """Calls the daemon's API. Every error answer raises MonsterError."""

    def __init__(self, base_url, token=None, timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method, path, body=None):
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)["error"]
                raise MonsterError(e.code, err["code"], err["message"]) from None
            except (ValueError, KeyError, TypeError):
                raise MonsterError(e.code, "http", raw.decode(errors="replace")) from None

    def log(self, type, data, key=None, idempotency_key=None, meta=None):
        """Log one event; returns where it was stored: {"id", "type", "position", "time"}."""
        event = {"type": type, "data": data}
        if key:
            event["key"] = key
        if idempotency_key:
            event["idempotency_key"] = idempotency_key
        if meta:
            event["meta"] = meta
        return self._call("POST", "/v1/events", event)

    def log_batch(self, events):
        """Log several events atomically; each is a dict with type and data. Returns
        {"id", "type", "position", "time"} for each, in order."""
        return self._call("POST", "/v1/events", {"events": events})["events"]

    def events(self, type=None, after=0, limit=100):
        """One page of history: {"events": [...], "next_after": P, "has_more": bool}."""
        q = {"after": after, "limit": limit}
        if type:
            q["type"] = type
        return self._call("GET", "/v1/events?" + urllib.parse.urlencode(q))

    def event(self, event_id):
        return self._call("GET", "/v1/events/" + urllib.parse.quote(event_id, safe=""))

    def types(self):
        return self._call("GET", "/v1/types")["types"]

    def consumers(self):
        return self._call("GET", "/v1/consumers")["consumers"]

    def consumer(self, name):
        return self._call("GET", "/v1/consumers/" + urllib.parse.quote(name, safe=""))

    def put_webhook_consumer(self, name, types, url, secret, start_at="beginning", **options):
        """Create or update a webhook consumer; options: concurrency, max_attempts,
        initial_backoff, max_backoff (durations such as "1s")."""
        body = {"types": types, "webhook": {"url": url, "secret": secret}, "start_at": start_at}
        body.update(options)
        return self._call("PUT", "/v1/consumers/" + urllib.parse.quote(name, safe=""), body)

    def delete_consumer(self, name):
        return self._call("DELETE", "/v1/consumers/" + urllib.parse.quote(name, safe=""))

    def reset_consumer(self, name, to):
        return self._call("POST", "/v1/consumers/%s/reset" % urllib.parse.quote(name, safe=""), {"to": to})

    def dead_letters(self, name):
        return self._call("GET", "/v1/consumers/%s/dead" % urllib.parse.quote(name, safe=""))["dead_letters"]
