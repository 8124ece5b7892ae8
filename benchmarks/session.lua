-- wrk script: every thread is one connection with its own session cookie.
-- BENCH_PATH is the page; BENCH_COOKIES holds one "name=value" per connection, "|"-separated.
-- A Set-Cookie in a response replaces the thread's cookie (cookie stores re-issue it).

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

function init(args)
  path = os.getenv("BENCH_PATH") or "/"
  local list = {}
  for item in string.gmatch(os.getenv("BENCH_COOKIES") or "", "[^|]+") do
    table.insert(list, item)
  end
  if #list > 0 then
    cookie = list[((index - 1) % #list) + 1]
  end
end

function request()
  if cookie then
    return wrk.format("GET", path, { ["Cookie"] = cookie })
  end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  for name, value in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      cookie = string.match(value, "^[^;]+")
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
