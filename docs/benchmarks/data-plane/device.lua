-- Device API requests on random devices of DEVICE_MIN..DEVICE_MAX (tokens
-- `dev-<id>`, see setup.sh). MODE: update (V1 and V2 now), get (V1),
-- batch (POST 1,000 timestamped points of V1), history (data/get of V1
-- over a day, on the first HISTORY_DEVICES devices), healthz (baseline).
-- DELAY_MS: a pause before each request of a connection (a fixed rate).
local min = tonumber(os.getenv("DEVICE_MIN") or "1")
local max = tonumber(os.getenv("DEVICE_MAX") or "1")
local mode = os.getenv("MODE") or "update"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local history_devices = tonumber(os.getenv("HISTORY_DEVICES") or "100")
local body = nil

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  if mode == "batch" then
    local now = os.time() * 1000
    local points = {}
    for i = 1, 1000 do
      points[i] = "[" .. (now - 3600000 + i * 3600) .. "," .. string.format("%.2f", 20 + i % 50) .. "]"
    end
    body = "[" .. table.concat(points, ",") .. "]"
  end
end

function delay()
  return delay_ms
end

request = function()
  local id = math.random(min, max)
  if mode == "update" then
    return wrk.format("GET", "/external/api/update?token=dev-" .. id ..
      "&V1=" .. string.format("%.2f", math.random() * 100) .. "&V2=" .. math.random(0, 1000))
  elseif mode == "get" then
    return wrk.format("GET", "/external/api/get?token=dev-" .. id .. "&V1")
  elseif mode == "batch" then
    return wrk.format("POST", "/external/api/batch/update?token=dev-" .. id .. "&pin=V1",
      { ["content-type"] = "application/json" }, body)
  elseif mode == "history" then
    local hid = min + math.random(0, history_devices - 1)
    return wrk.format("GET", "/external/api/data/get?token=dev-" .. hid ..
      "&pin=V1&period=DAY&output=JSON")
  else
    return wrk.format("GET", "/healthz")
  end
end
