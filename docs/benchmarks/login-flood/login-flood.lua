-- wrk script: failing logins, each for a random email. With SPREAD=1 every
-- request names a random client in X-Forwarded-For (the server trusts the
-- bench's own address as a proxy): many attackers behind a load balancer,
-- which the per-client limit cannot slow, so every attempt reaches the
-- password-hashing queue.
local spread = os.getenv("SPREAD") == "1"

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  if spread then
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
      math.random(0, 255), math.random(0, 255), math.random(1, 254))
  end
  local body = string.format('{"email":"flood%d@example.test","password":"not the password"}',
    math.random(1, 1000000))
  return wrk.format("POST", "/api/v1/auth/login", headers, body)
end

local counts = {}
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  -- response() runs in each thread's own Lua state: wrk's summary has the
  -- totals, the per-status split is per thread and not shown here.
  io.write(string.format("login flood: requests %d, non-2xx %d, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
