-- wrk script: one event per POST /v1/events (each durably stored before its 201).
--
--   go build -o /tmp/monster ./cmd/monster        # from the repository root
--   rm -f /tmp/bench/b.db*; mkdir -p /tmp/bench
--   /tmp/monster serve --store /tmp/bench/b.db --addr 127.0.0.1:7788 &
--   wrk -t2 -c64 -d10s -s daemon/testdata/wrk/single.lua http://127.0.0.1:7788/v1/events
--
-- Requests/sec is the figure (target: at least 15,000 on loopback with 64
-- connections). The script counts non-201 answers and prints them at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"user.bought_shirt","data":{"user":"gordon","size":"L","quantity":2,"note":"benchmark event of about a hundred bytes"},"key":"gordon"}'

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   bad = 0
end

function response(status, headers, body)
   if status ~= 201 then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local n = 0
   for _, t in ipairs(threads) do
      n = n + t:get("bad")
   end
   io.write(string.format("non-201 answers: %d\n", n))
   io.write(string.format("events/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
end
