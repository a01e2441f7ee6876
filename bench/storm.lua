-- wrk script: the abuse side of bench/logins.py. POSTs one fixed JSON body again and again and counts the answers
-- by status (the storm is expected to be refused: 401, 429, 423, 503 are what it measures, not errors).
--   BENCH_PATH    the path, e.g. /v1/auth/token
--   BENCH_BODY    the JSON body
--   BENCH_TOKEN   optional access token (Authorization: Bearer ...)
-- done() prints one line "BENCH_STORM {json}" with the counts and the latency percentiles.

local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY")
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    if path == nil or body == nil then
        error("storm.lua needs BENCH_PATH and BENCH_BODY")
    end
    wrk.method = "POST"
    wrk.path = path
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
    if token ~= nil and token ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. token
    end
    s2xx, s401, s422, s423, s429, s503, s5xx, sother = 0, 0, 0, 0, 0, 0, 0, 0
end

function response(status, headers, body)
    if status >= 200 and status < 300 then s2xx = s2xx + 1
    elseif status == 401 then s401 = s401 + 1
    elseif status == 422 then s422 = s422 + 1
    elseif status == 423 then s423 = s423 + 1
    elseif status == 429 then s429 = s429 + 1
    elseif status == 503 then s503 = s503 + 1
    elseif status >= 500 then s5xx = s5xx + 1
    else sother = sother + 1 end
end

function done(summary, latency, requests)
    local names = {"s2xx", "s401", "s422", "s423", "s429", "s503", "s5xx", "sother"}
    local totals = {}
    for _, name in ipairs(names) do totals[name] = 0 end
    for _, thread in ipairs(threads) do
        for _, name in ipairs(names) do totals[name] = totals[name] + (thread:get(name) or 0) end
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH_STORM {"requests": %.0f, "duration_us": %.0f, "2xx": %d, "401": %d, "422": %d, "423": %d, '
            .. '"429": %d, "503": %d, "5xx": %d, "other": %d, "connect": %.0f, "read": %.0f, "timeout": %.0f, '
            .. '"p50_us": %.1f, "p99_us": %.1f, "max_us": %.1f}\n',
        summary.requests, summary.duration, totals.s2xx, totals.s401, totals.s422, totals.s423, totals.s429,
        totals.s503, totals.s5xx, totals.sother, e.connect, e.read, e.timeout,
        latency:percentile(50), latency:percentile(99), latency.max
    ))
end
