-- wrk script: batches of 100 events per POST /v1/events (each batch stored
-- atomically and durably before its 201).
--
--   go build -o /tmp/monster ./cmd/monster        # from the repository root
--   rm -f /tmp/bench/b.db*; mkdir -p /tmp/bench
--   /tmp/monster serve --store /tmp/bench/b.db --addr 127.0.0.1:7788 &
--   wrk -t2 -c64 -d10s -s daemon/testdata/wrk/batch.lua http://127.0.0.1:7788/v1/events
--
-- The script prints events/s (requests/s x 100; target: at least 150,000 on
-- loopback with 64 connections) and counts non-201 answers.
local perRequest = 100

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local events = {}
for i = 1, perRequest do
   events[i] = string.format('{"type":"user.bought_shirt","data":{"user":"user-%d","size":"L","quantity":%d,"note":"benchmark event of about a hundred bytes"},"key":"user-%d"}', i % 10, i, i % 10)
end
wrk.body = '{"events":[' .. table.concat(events, ",") .. ']}'

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
   io.write(string.format("events/s: %.0f\n", perRequest * summary.requests / (summary.duration / 1e6)))
end
