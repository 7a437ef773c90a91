-- Shared by the wrk scripts of `make bench`: the seeded id range and a Zipf-like id sampler.
-- FIRST_ID / LAST_ID come from the environment (loadtest/bench/ passes the range `make seed` loaded).
local first = tonumber(os.getenv("FIRST_ID") or "1")
local last = tonumber(os.getenv("LAST_ID") or "1000")
local count = last - first + 1
local log_count = math.log(count)

-- Log-uniform ranks (Zipf with s = 1, continuous approximation): rank r is drawn with
-- probability ~ 1/r, so a few ids are hot and most are cold, as in real traffic.
function zipf_id()
  local rank = math.floor(math.exp(math.random() * log_count))
  return first + rank - 1
end

-- EDGE_BYPASS=1: every GET carries a query string (the default page size), which nginx's edge
-- neither serves nor stores: the running stack without its edge, as stage 4 measures it.
edge_query = os.getenv("EDGE_BYPASS") == "1" and "?limit=20" or ""

function uniform_id()
  return math.random(first, last)
end

-- Each wrk thread seeds its own generator: wrk calls setup() once per thread before the run and
-- init() inside each thread (a script that requires this file gets both).
function seed_random(thread_id)
  math.randomseed(os.time() + thread_id * 7919)
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  seed_random(id or 0)
end
