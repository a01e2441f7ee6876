-- wrk script of the nearby benchmark (bench/nearby.py starts wrk with it; see bench/README.md).
--
-- Every request asks GET /v1/pois/nearby from a random point in a box around the centre of the bench data, as the
-- phone of a BD walking the streets does. bench/nearby.py passes everything through the environment:
--   BENCH_TOKEN                 the access token (Authorization: Bearer ...)
--   BENCH_LAT, BENCH_LON        the centre of the box
--   BENCH_HALF_LAT, BENCH_HALF_LON  half its sides, in degrees
--   BENCH_QUERY                 the rest of the query string, e.g. "&limit=20&radius_m=2000"
-- done() prints one line "BENCH_RESULT {json}" that bench/loadgen.py reads.

local token = os.getenv("BENCH_TOKEN")
local lat0 = tonumber(os.getenv("BENCH_LAT"))
local lon0 = tonumber(os.getenv("BENCH_LON"))
local half_lat = tonumber(os.getenv("BENCH_HALF_LAT"))
local half_lon = tonumber(os.getenv("BENCH_HALF_LON"))
local rest = os.getenv("BENCH_QUERY") or ""

local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
end

function init(args)
    -- thread_number is set by setup(): each thread draws its own sequence of points.
    math.randomseed(os.time() * 100 + thread_number)
    if token == nil or lat0 == nil or lon0 == nil or half_lat == nil or half_lon == nil then
        error("nearby.lua needs BENCH_TOKEN, BENCH_LAT, BENCH_LON, BENCH_HALF_LAT and BENCH_HALF_LON")
    end
    wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
    local lat = lat0 + (math.random() * 2 - 1) * half_lat
    local lon = lon0 + (math.random() * 2 - 1) * half_lon
    return wrk.format("GET", string.format("/v1/pois/nearby?lat=%.6f&lon=%.6f%s", lat, lon, rest))
end

function done(summary, latency, requests)
    local e = summary.errors
    -- wrk counts answers with status >= 400 in errors.status (no response() hook here: it would make wrk parse
    -- every body and cost CPU that the server needs on a small machine). bench/nearby.py checks one real answer
    -- before the run.
    io.write(string.format(
        'BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "status_errors": %.0f, "connect": %.0f, '
            .. '"read": %.0f, "write": %.0f, "timeout": %.0f, "mean_us": %.1f, "p50_us": %.1f, "p90_us": %.1f, '
            .. '"p99_us": %.1f, "max_us": %.1f}\n',
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
    ))
end
