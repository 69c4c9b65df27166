"""The eventlib shoe store, over HTTP: a Python web app logs product views to
Monster, and a webhook consumer served by this same script counts views per
product, checking the HMAC signature of every delivery.

    python3 shoestore_demo.py --server http://127.0.0.1:7777 [--token T]

It exits 0 when every view was delivered with a valid signature and a forged
delivery was refused, and prints a JSON summary.
"""

import argparse
import http.server
import json
import sys
import threading
import time
import urllib.error
import urllib.request

from monster_client import MonsterClient, MonsterError, sign, verify_signature

SECRET = "shoe-secret"


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.views = {}          # product -> count
        self.seen = set()        # event IDs, to count redeliveries once
        self.bad_signatures = 0
        self.deliveries = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        srv = self.server
        if not verify_signature(body, SECRET, self.headers.get("Monster-Signature")):
            with srv.lock:
                srv.bad_signatures += 1
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        assert event["id"] == self.headers["Monster-Event-Id"]
        with srv.lock:
            srv.deliveries += 1
            if event["id"] not in srv.seen:   # at-least-once: count each event once
                srv.seen.add(event["id"])
                product = event["data"]["product"]
                srv.views[product] = srv.views.get(product, 0) + 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="http://127.0.0.1:7777")
    ap.add_argument("--token")
    ap.add_argument("--views", type=int, default=30)
    args = ap.parse_args()

    client = MonsterClient(args.server, token=args.token)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = "http://127.0.0.1:%d/monster" % receiver.server_address[1]

    client.put_webhook_consumer("shoestore.views-counter", ["shoestore.*"], hook_url, SECRET,
                                start_at="end", concurrency=4)

    # The product page logs a view per request, as eventlib's log() did.
    products = ["red-shoe", "blue-shoe", "green-boot"]
    for i in range(args.views):
        client.log("shoestore.product_viewed",
                   {"user": "user%d" % (i % 7), "product": products[i % 3], "source": "catalog"},
                   key="user%d" % (i % 7))
    # A batch, the way a busy page would flush several.
    client.log_batch([{"type": "shoestore.product_viewed",
                       "data": {"user": "ada", "product": "red-shoe", "source": "search"}}] * 3)

    # Bad input gets a JSON error naming the problem.
    try:
        client._call("POST", "/v1/events", {"type": 5, "data": {}})
        raise SystemExit("a malformed event was accepted")
    except MonsterError as e:
        bad_request = {"status": e.status, "code": e.code, "message": e.message}

    # A forged delivery is refused by the receiver.
    forged = json.dumps({"id": "forged"}).encode()
    req = urllib.request.Request(hook_url, data=forged, method="POST",
                                 headers={"Monster-Signature": sign(forged, "wrong-secret"),
                                          "Monster-Event-Id": "forged"})
    try:
        urllib.request.urlopen(req, timeout=5)
        raise SystemExit("the receiver accepted a forged delivery")
    except urllib.error.HTTPError as e:
        forged_status = e.code

    want = args.views + 3
    deadline = time.time() + 30
    while time.time() < deadline:
        with receiver.lock:
            if len(receiver.seen) >= want:
                break
        time.sleep(0.02)
    with receiver.lock:
        summary = {
            "delivered": len(receiver.seen),
            "deliveries": receiver.deliveries,
            "views": receiver.views,
            "bad_signatures": receiver.bad_signatures,
            "forged_status": forged_status,
            "bad_request": bad_request,
        }
    client.delete_consumer("shoestore.views-counter")
    receiver.shutdown()
    print(json.dumps(summary, sort_keys=True))
    ok = summary["delivered"] == want and summary["bad_signatures"] == 1 and forged_status == 401
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
