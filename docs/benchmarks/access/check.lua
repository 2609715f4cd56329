-- wrk script: POST /api/v1/access/check with random questions.
-- Environment: BENCH_TOKEN (bearer token), QUESTIONS (per request, default 1),
-- USER_MIN/USER_MAX and DEVICE_MIN/DEVICE_MAX (id ranges of the world);
-- DELAY_MS (optional): each connection waits this long before each request,
-- so the load is a fixed rate (at most connections x 1000/DELAY_MS a second)
-- instead of as fast as the server answers. wrk times each request from its
-- sending, so the latency then is that of a server that is not saturated.
local token = os.getenv("BENCH_TOKEN")
local n = tonumber(os.getenv("QUESTIONS") or "1")
local user_min = tonumber(os.getenv("USER_MIN"))
local user_max = tonumber(os.getenv("USER_MAX"))
local device_min = tonumber(os.getenv("DEVICE_MIN"))
local device_max = tonumber(os.getenv("DEVICE_MAX"))
local actions = { "view", "control", "edit", "view_timeline" }
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")

if delay_ms then
  function delay()
    return delay_ms
  end
end

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  local questions = {}
  for i = 1, n do
    questions[i] = string.format('{"user_id":%d,"action":"%s","device_id":%d}',
      math.random(user_min, user_max), actions[math.random(#actions)],
      math.random(device_min, device_max))
  end
  local body = '{"questions":[' .. table.concat(questions, ",") .. ']}'
  return wrk.format("POST", "/api/v1/access/check", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

local errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("questions/request %d, requests %d, non-200 %d\n",
    n, summary.requests, summary.errors.status))
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
