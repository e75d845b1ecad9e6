-- The full-lifecycle load of ``bench.http``, for wrk (LuaJIT): each wrk thread drives ONE
-- keep-alive connection (``-tN -cN``), so a thread's globals are that client's state.
--
-- One lifecycle, every answer's status checked (a wrong one counts a failure at that step and
-- the client starts a new order):
--   1. client    POST /v1/orders                         201  (order id from the body)
--   2. client    POST /v1/orders/{id}/payments           201  (checkout.tokenId from the body)
--   3. (browser) POST /sandbox/payment-form/{token} JSON 200  (charges 4242…, delivers the
--                signed webhook in-process: payment success, order awaiting_acceptance)
--   4. freelancer POST /v1/orders/{id}/deliver           200  (delivering also accepts)
--   5. client    POST /v1/orders/{id}/complete           200
--
-- The prelude written by bench/http.py sets CLIENTS (one token per thread), FREELANCER,
-- GIG and KEYED (the steps that send an Idempotency-Key).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local NAMES = { "place", "payment", "pay", "deliver", "complete" }
local EXPECTED = { 201, 201, 200, 200, 200 }
local CARD = '{"cardNumber":"4242424242424242","expiry":"12/39","cvv":"123",'
  .. '"cardHolderName":"Bench"}'

-- Per thread (= per client) state; read by done() through thread:get().
tid = 0
completed = 0
durations = {}          -- ms of each whole lifecycle
-- ms of each step's request, one flat table per step (wrk's thread:get() crashes on nested
-- tables)
step1, step2, step3, step4, step5 = {}, {}, {}, {}, {}
local step_ms = { step1, step2, step3, step4, step5 }
failures = { 0, 0, 0, 0, 0 }
first_errors = {}       -- a few "step status body" lines, for the report

local step = 1
local n = 0
local order_id, token_id
local started, sent
local awaiting = false
local answered = 0
local client_token

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  client_token = CLIENTS[tid]
end

-- wrk also calls request() once in its main Lua state (to check the script), where init()
-- never ran: give that call a token too.
client_token = CLIENTS[1]

local function fail(status, body)
  failures[step] = failures[step] + 1
  if #first_errors < 5 then
    local text = body and body:sub(1, 200) or ""
    table.insert(first_errors, NAMES[step] .. " " .. tostring(status) .. " " .. text)
  end
  step = 1
end

local function headers(token, json)
  local h = { ["Authorization"] = "Bearer " .. token }
  if json then h["Content-Type"] = "application/json" end
  if KEYED[step] then
    h["Idempotency-Key"] = "lc-" .. tid .. "-" .. n .. "-" .. step
  end
  return h
end

function request()
  -- No answer to the previous request (the socket failed): start over. But wrk calls
  -- request() once more in the first thread's state to check the script, before any request
  -- is sent: that one is no failure.
  if awaiting and answered > 0 then
    fail(0, "no answer")
  end
  awaiting = true
  if step == 1 then
    n = n + 1
    started = now_ms()
  end
  sent = now_ms()
  if step == 1 then
    return wrk.format("POST", "/v1/orders", headers(client_token, true),
      '{"gigId":"' .. GIG .. '","packageId":"basic"}')
  elseif step == 2 then
    return wrk.format("POST", "/v1/orders/" .. order_id .. "/payments", headers(client_token, true),
      '{"paymentMethod":"credit_card"}')
  elseif step == 3 then
    return wrk.format("POST", "/sandbox/payment-form/" .. token_id,
      { ["Content-Type"] = "application/json" }, CARD)
  elseif step == 4 then
    return wrk.format("POST", "/v1/orders/" .. order_id .. "/deliver", headers(FREELANCER, true),
      '{"message":"done"}')
  else
    return wrk.format("POST", "/v1/orders/" .. order_id .. "/complete", headers(client_token, false))
  end
end

function response(status, hdrs, body)
  awaiting = false
  answered = answered + 1
  local now = now_ms()
  if status ~= EXPECTED[step] then
    return fail(status, body)
  end
  local times = step_ms[step]
  times[#times + 1] = now - sent
  if step == 1 then
    order_id = body:match('"id":"([%x%-]+)"')
    if not order_id then return fail(status, body) end
  elseif step == 2 then
    token_id = body:match('"tokenId":"([%w_]+)"')
    if not token_id then return fail(status, body) end
  elseif step == 3 then
    if not body:find('"status":"paid"', 1, true) then return fail(status, body) end
  elseif step == 5 then
    if not body:find('"status":"completed"', 1, true) then return fail(status, body) end
    completed = completed + 1
    durations[#durations + 1] = now - started
    step = 1
    return
  end
  step = step + 1
end

local function join(list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = string.format("%.3f", v) end
  return table.concat(parts, ",")
end

function done(summary, latency, requests)
  -- One line per fact, for bench/http.py to parse.
  local total, fails, all = 0, { 0, 0, 0, 0, 0 }, {}
  local steps = { {}, {}, {}, {}, {} }
  for _, thread in ipairs(threads) do
    total = total + thread:get("completed")
    local f = thread:get("failures")
    for i = 1, 5 do fails[i] = fails[i] + f[i] end
    for _, v in ipairs(thread:get("durations")) do all[#all + 1] = v end
    for i = 1, 5 do
      for _, v in ipairs(thread:get("step" .. i)) do steps[i][#steps[i] + 1] = v end
    end
    for _, line in ipairs(thread:get("first_errors")) do
      io.write("LC error ", (line:gsub("\n", " ")), "\n")
    end
  end
  io.write("LC completed ", total, "\n")
  io.write("LC seconds ", summary.duration / 1e6, "\n")
  io.write("LC failures ", table.concat(fails, ","), "\n")
  io.write("LC durations ", join(all), "\n")
  for i = 1, 5 do io.write("LC step ", NAMES[i], " ", join(steps[i]), "\n") end
end
