-- wrk script: POST a Tradecloud order event with a unique meta.messageId on every request.
-- Environment: BENCH_BODY_DIR (from payloads.py), BENCH_BODY (small|large), BENCH_TOKEN,
-- BENCH_PATH (default /tradecloud/order), BENCH_TAG (prefix that makes ids unique per run).

local directory = assert(os.getenv("BENCH_BODY_DIR"), "BENCH_BODY_DIR is not set")
local name = os.getenv("BENCH_BODY") or "small"
local token = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
local path = os.getenv("BENCH_PATH") or "/tradecloud/order"
local tag = os.getenv("BENCH_TAG") or "bench"

local function read(file)
  local handle = assert(io.open(file, "rb"))
  local data = handle:read("*a")
  handle:close()
  return data
end

local head = read(directory .. "/" .. name .. ".head")
local tail = read(directory .. "/" .. name .. ".tail")
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. token,
}

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

local sequence = 0
function request()
  sequence = sequence + 1
  local message_id = string.format("%s-%d-%010d", tag, thread_number, sequence)
  return wrk.format("POST", path, headers, head .. message_id .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"non_2xx":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
