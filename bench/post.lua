-- wrk script: POST one fixed JSON body, again and again (bench/sync.py's no-change pull; see bench/README.md).
--
-- The request never changes, so it is built once per thread (no request() function: wrk then sends the same
-- bytes each time and spends no Lua per request). bench/sync.py passes everything through the environment:
--   BENCH_TOKEN   the access token (Authorization: Bearer ...)
--   BENCH_PATH    the path, e.g. /v1/sync/pull
--   BENCH_BODY    the JSON body, e.g. {"cursor": "...", "limit": 1000}
-- done() prints one line "BENCH_RESULT {json}" that bench/loadgen.py reads (the same line as nearby.lua's).

local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY")

function init(args)
    if token == nil or path == nil or body == nil then
        error("post.lua needs BENCH_TOKEN, BENCH_PATH and BENCH_BODY")
    end
    wrk.method = "POST"
    wrk.path = path
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
    local e = summary.errors
    -- wrk counts answers with status >= 400 in errors.status; bench/sync.py checks one real answer before the run.
    io.write(string.format(
        'BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "status_errors": %.0f, "connect": %.0f, '
            .. '"read": %.0f, "write": %.0f, "timeout": %.0f, "mean_us": %.1f, "p50_us": %.1f, "p90_us": %.1f, '
            .. '"p99_us": %.1f, "max_us": %.1f}\n',
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
    ))
end
