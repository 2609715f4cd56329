-- wrk script: GET /api/v1/access/who-can for a random device.
local token = os.getenv("BENCH_TOKEN")
local device_min = tonumber(os.getenv("DEVICE_MIN"))
local device_max = tonumber(os.getenv("DEVICE_MAX"))

function request()
  local path = string.format("/api/v1/access/who-can?action=view&device_id=%d",
    math.random(device_min, device_max))
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx/3xx %d\n", summary.requests, summary.errors.status))
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
