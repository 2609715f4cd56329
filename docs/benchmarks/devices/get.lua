-- wrk script: GET one path with a bearer token, or a random device.
-- Environment: TOKEN (bearer token); PATH_Q (the path and query to get), or
-- DEVICE_MIN/DEVICE_MAX to GET /api/v1/devices/{random id in range}.
local token = os.getenv("TOKEN")
local path = os.getenv("PATH_Q")
local device_min = tonumber(os.getenv("DEVICE_MIN") or "0")
local device_max = tonumber(os.getenv("DEVICE_MAX") or "0")

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  local p = path
  if p == nil or p == "" then
    p = "/api/v1/devices/" .. math.random(device_min, device_max)
  end
  return wrk.format("GET", p, { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, %.0f req/s\n", summary.requests,
    summary.errors.status, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
