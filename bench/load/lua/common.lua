-- What every load scenario shares (bench/load runs wrk with LUA_PATH pointing here).
--
-- Each wrk thread counts its answers by status and keeps every commit the server acknowledged.
-- done() gathers both from all threads (thread:get copies a thread's tables out) and writes one
-- JSON result to $LOAD_RESULT and the acknowledged commits, "ref commit" a line in the order
-- they were acknowledged, to $LOAD_ACKED. Scenarios that run one connection per thread also
-- time each kind of request themselves: there request and response strictly alternate, so
-- the thread's last request is the one being answered.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clock_id, load_timespec *tp);
]]

local common = {}
local threads = {}
local clock = ffi.new("load_timespec")
local CLOCK_MONOTONIC = 1

-- Per thread (globals, so that done() can read them with thread:get, which copies flat tables
-- only: wrk 4.1 crashes copying a table of tables).
statuses = {} -- status -> count
acked = {} -- "ref commit" lines
counters = {} -- name -> count
local KINDS = { "get", "put", "publish" }
for _, kind in ipairs(KINDS) do
  _G["latencies_" .. kind] = {} -- microseconds
end

local repo = os.getenv("LOAD_REPO")
local authorization = "Bearer " .. os.getenv("LOAD_TOKEN")
local pending_kind, pending_since

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1e6 + tonumber(clock.tv_nsec) / 1e3
end

-- wrk calls setup in its main Lua state before each thread's init: number the threads, so
-- that each one can pick the entities it owns.
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

function common.read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  return lines
end

-- The entities this thread owns ($LOAD_ENTITIES: "thread key commit" lines), each with the
-- ETag of its draft tip.
function common.owned_entities()
  local owned = {}
  for _, line in ipairs(common.read_lines(os.getenv("LOAD_ENTITIES"))) do
    local thread, key, commit = line:match("^(%d+) (%S+) (%x+)$")
    if tonumber(thread) == id then
      owned[#owned + 1] = { key = key, etag = '"' .. commit .. '"' }
    end
  end
  assert(#owned > 0, "thread " .. id .. " owns no entities")
  return owned
end

-- One ready-made GET per live entity ($LOAD_READS: one path a line), this thread starting at
-- its own place in the list so threads spread over the keys.
function common.live_gets()
  local paths = common.read_lines(os.getenv("LOAD_READS"))
  local gets = {}
  for i = 1, #paths do
    local path = paths[(i + id - 2) % #paths + 1]
    gets[i] = wrk.format("GET", path, { Authorization = authorization })
  end
  return gets
end

-- A function that hands out the items of `list` in turn, for ever, and how many it has handed out.
function common.in_turn(list)
  local handed = 0
  return function()
    handed = handed + 1
    return list[(handed - 1) % #list + 1], handed
  end
end

function common.put(entity, revision)
  local body = string.format(
    '{"type": "component.html", "title": "Load %s", "fields": {"html": "<p>revision %d</p>\\n"}}',
    entity.key,
    revision
  )
  local headers = { Authorization = authorization, ["Content-Type"] = "application/json", ["If-Match"] = entity.etag }
  return wrk.format("PUT", "/repos/" .. repo .. "/entities/" .. entity.key, headers, body)
end

function common.publish(entity)
  local headers = { Authorization = authorization, ["If-Match"] = entity.etag }
  return wrk.format("POST", "/repos/" .. repo .. "/entities/" .. entity.key .. "/publish", headers)
end

function common.count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function common.bump(name)
  counters[name] = (counters[name] or 0) + 1
end

function common.is_success(status)
  return status >= 200 and status < 300
end

-- Time a request of `kind` (one connection per thread only) and pass it on to wrk.
function common.start(kind, request)
  pending_kind, pending_since = kind, now_us()
  return request
end

function common.finish(status)
  local seen = _G["latencies_" .. pending_kind]
  seen[#seen + 1] = now_us() - pending_since
  common.count(status)
end

-- A successful PUT: the entity's new draft tip is its ETag.
function common.ack_put(entity, headers)
  entity.etag = headers["etag"]
  acked[#acked + 1] = "refs/drafts/" .. entity.key .. " " .. entity.etag:sub(2, -2)
end

-- A successful publish answers with the new commit on main, or null if nothing changed.
function common.ack_publish(body)
  local commit = body:match('^{"commit":"(%x+)"')
  if commit then
    acked[#acked + 1] = "refs/heads/main " .. commit
  else
    common.bump("noop_publishes")
  end
end

-- -- done(): in wrk's main Lua state, after every thread stopped ------------------------------

local function encode(value)
  if type(value) == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(k), encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(value) == "number" then
    return string.format("%.1f", value)
  end
  return string.format("%q", tostring(value))
end

local function add_counts(into, counts)
  for k, n in pairs(counts) do
    into[k] = (into[k] or 0) + n
  end
end

local function percentiles(samples)
  table.sort(samples)
  local function at(p)
    return samples[math.max(1, math.ceil(#samples * p / 100))]
  end
  return { count = #samples, p50_us = at(50), p99_us = at(99), max_us = samples[#samples] }
end

function done(summary, latency, requests)
  local all_statuses, all_counters, kinds = {}, {}, {}
  local acked_file = assert(io.open(os.getenv("LOAD_ACKED"), "w"))
  for _, thread in ipairs(threads) do
    add_counts(all_statuses, thread:get("statuses"))
    add_counts(all_counters, thread:get("counters"))
    for _, line in ipairs(thread:get("acked")) do
      acked_file:write(line, "\n")
    end
  end
  acked_file:close()
  for _, kind in ipairs(KINDS) do
    local samples = {}
    for _, thread in ipairs(threads) do
      for _, us in ipairs(thread:get("latencies_" .. kind)) do
        samples[#samples + 1] = us
      end
    end
    if #samples > 0 then
      kinds[kind] = percentiles(samples)
    end
  end
  local result = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors = summary.errors,
    latency_us = {
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
      max = latency.max,
      mean = latency.mean,
    },
    statuses = all_statuses,
    counters = all_counters,
    kinds = kinds,
  }
  local out = assert(io.open(os.getenv("LOAD_RESULT"), "w"))
  out:write(encode(result), "\n")
  out:close()
end

return common
