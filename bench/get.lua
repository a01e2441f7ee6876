-- wrk script: GET one path with a bearer token, over and over (bench/tracking_reads.py starts wrk with it).
--   BENCH_TOKEN  the access token (Authorization: Bearer ...)
--   BENCH_PATH   the path and query, e.g. /v1/tracking/live
-- done() prints one line "BENCH_RESULT {json}" that bench/loadgen.py reads.

local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH")

function init(args)
    if token == nil or path == nil then
        error("get.lua needs BENCH_TOKEN and BENCH_PATH")
    end
    wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
    return wrk.format("GET", path)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "status_errors": %.0f, "connect": %.0f, '
            .. '"read": %.0f, "write": %.0f, "timeout": %.0f, "mean_us": %.1f, "p50_us": %.1f, "p90_us": %.1f, '
            .. '"p99_us": %.1f, "max_us": %.1f}\n',
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
    ))
end
