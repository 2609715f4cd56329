-- wrk script: authorization writes through the API, as the root Admin.
-- KIND=org  PATCHes a random org's settings (description), an org write;
-- KIND=role PUTs the User role's set in a random org, alternating two sets,
--           a role write every decision cache must then see.
-- Environment: BENCH_TOKEN, ORG_MIN/ORG_MAX (org ids of the world),
-- USER_ROLE (the User role's id; 3 in a generated world).
local token = os.getenv("BENCH_TOKEN")
local kind = os.getenv("KIND") or "org"
local org_min = tonumber(os.getenv("ORG_MIN"))
local org_max = tonumber(os.getenv("ORG_MAX"))
local role = tonumber(os.getenv("USER_ROLE") or "3")
local n = 0

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  n = n + 1
  local org = math.random(org_min, org_max)
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
  if kind == "role" then
    local set = (n % 2 == 0) and '["own_devices.view","own_devices.control"]' or '["own_devices.view"]'
    return wrk.format("PUT", string.format("/api/v1/orgs/%d/roles/%d/permissions", org, role),
      headers, '{"permissions":' .. set .. '}')
  end
  return wrk.format("PATCH", string.format("/api/v1/orgs/%d", org), headers,
    string.format('{"description":"bench %d"}', n))
end

function done(summary, latency, requests)
  io.write(string.format("%s writes: requests %d, non-2xx %d\n",
    kind, summary.requests, summary.errors.status))
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
