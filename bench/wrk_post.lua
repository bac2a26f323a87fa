-- POSTs a form body built per request: {key} and {n} in BODY are replaced by a key from
-- KEYS (one per line in the file named by KEYS_FILE) and a number unique to this thread;
-- {id} by the next line of IDS_FILE (an id, or any text), each line used once across threads.
-- IF_NONE_MATCH, when set, is sent as the If-None-Match header.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  keys = {}
  for line in io.lines(os.getenv("KEYS_FILE")) do table.insert(keys, line) end
  template = os.getenv("BODY")
  ids = {}
  if os.getenv("IDS_FILE") then
    for line in io.lines(os.getenv("IDS_FILE")) do table.insert(ids, line) end
  end
  path = os.getenv("PATH_INFO") or "/api/v2"
end

function request()
  counter = counter + 1
  local key = keys[(counter % #keys) + 1]
  local body = template:gsub("{key}", key):gsub("{n}", tid .. "_" .. counter)
  if #ids > 0 then
    -- Two threads take alternate ids, so no id is sent twice.
    body = body:gsub("{id}", ids[((counter * 2 + tid) % #ids) + 1])
  end
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  if os.getenv("IF_NONE_MATCH") then headers["If-None-Match"] = os.getenv("IF_NONE_MATCH") end
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT {\"requests\": %d, \"seconds\": %.3f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"http_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
