-- bench_queue's closed loop driven by wrk 4.1 (LuaJIT): one labeler per wrk thread, run with
-- `-t N -c N` so that each thread owns one connection and one labeler's cookies. A thread loops as a
-- browser does: GET the page, read its form (action, CSRF token, one value per radio group), POST
-- it, follow the redirect to the next GET, keeping the cookies the server sets.
--
-- The script's argument (after `--`) is a config file that bench_queue writes, one "key value" a line:
--   page /campaigns/bench/work/      the page to GET; a submit must redirect back to it
--   form judgment-form               the id of the form to submit
--   message 25                       the message level that acknowledges a submit (no line: any 302 back)
--   out /tmp/.../wrk-summary.json    where done() writes the summary bench_queue reads
--   cookies sessionid=...; csrftoken=...   one line per labeler, in thread order
--
-- wrk hands response() one value per header name, so of several Set-Cookie headers in one response
-- only the last arrives. A submit sets one cookie (its message). A page GET sets two: the deletion of
-- the messages cookie when the page showed the messages, then the CSRF cookie again with the same
-- value (Django renews its expiry whenever a page renders a token), which is the one that arrives.
-- So the script deletes the messages cookie itself when the page shows the messages, as Django's
-- cookie storage does. sessionid and csrftoken come from the sign-in, which bench_queue does.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } wrk_cycle_timespec;
int clock_gettime(int clock_id, wrk_cycle_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("wrk_cycle_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

-- Parsing, shared by the threads and by the test that checks it against a rendered page -------------

local function literal(text)
  return (text:gsub("%W", "%%%0"))
end

local function attribute(tag, name)
  return tag:match("%s" .. name .. '="([^"]*)"')
end

-- The form with this id: its action, its CSRF token and, per radio group in page order, its values.
function read_form(html, form_id)
  local open_at, open_end = html:find('<form id="' .. literal(form_id) .. '"[^>]*>')
  if not open_at then
    return nil
  end
  local action = attribute(html:sub(open_at, open_end), "action")
  local close_at = html:find("</form>", open_end + 1, true)
  if not action or not close_at then
    return nil
  end
  local inner = html:sub(open_end + 1, close_at - 1)
  local token = inner:match('name="csrfmiddlewaretoken" value="([^"]+)"')
  if not token then
    return nil
  end
  local groups, radios = {}, {}
  for tag in inner:gmatch("<input%s[^>]*>") do
    local name = attribute(tag, "name")
    if attribute(tag, "type") == "radio" and name then
      if not radios[name] then
        radios[name] = {}
        groups[#groups + 1] = name
      end
      table.insert(radios[name], attribute(tag, "value") or "")
    end
  end
  return {
    action = action,
    lease = action:match("/leases/([0-9a-f%-]+)/submit"),
    token = token,
    groups = groups,
    radios = radios,
  }
end

local function encode(value)
  return (tostring(value):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- The POST body a labeler sends: the token, one random value per radio group, an empty rationale and
-- a time on the page, as bench_queue's Python client sends.
function form_body(form, random)
  local fields = { "csrfmiddlewaretoken=" .. encode(form.token) }
  for _, name in ipairs(form.groups) do
    local values = form.radios[name]
    fields[#fields + 1] = encode(name) .. "=" .. encode(values[random(#values)])
  end
  fields[#fields + 1] = "rationale="
  fields[#fields + 1] = "time_spent_ms=" .. random(2000, 60000)
  return table.concat(fields, "&")
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local B64_VALUE = {}
for i = 1, #B64 do
  B64_VALUE[B64:sub(i, i)] = i - 1
end

local function base64url_decode(text)
  local out, bits, count = {}, 0, 0
  for c in text:gmatch(".") do
    local value = B64_VALUE[c]
    if value then
      bits, count = bits * 64 + value, count + 6
      if count >= 8 then
        count = count - 8
        out[#out + 1] = string.char(math.floor(bits / 2 ^ count) % 256)
        bits = bits % 2 ^ count
      end
    end
  end
  return table.concat(out)
end

-- Whether Django's signed messages cookie (payload:signature, read, not verified) holds a message of
-- this level; nil when the payload is compressed (a leading dot), which this script cannot read.
function has_message(cookie, level)
  local payload = (cookie or ""):gsub('"', ""):match("^([^:]*)")
  if payload:sub(1, 1) == "." then
    return nil
  end
  return base64url_decode(payload):find('"__json_message",%d,' .. level .. ",") ~= nil
end

-- The threads ---------------------------------------------------------------------------------------

local function read_config(file_name)
  local config = { cookies = {} }
  for line in io.lines(file_name) do
    local key, value = line:match("^(%S+) (.*)$")
    if key == "cookies" then
      config.cookies[#config.cookies + 1] = value
    elseif key then
      config[key] = value
    end
  end
  return config
end

local jar, cookie_order, known = {}, {}, {}

local function set_cookie(name, value)
  if not known[name] then
    known[name] = true
    cookie_order[#cookie_order + 1] = name
  end
  jar[name] = value
end

local function store_cookie(line)
  local name, value = (line or ""):match("^%s*([^=;%s]+)=([^;]*)")
  if not name then
    return
  end
  local lower = line:lower()
  local age = lower:match("max%-age=(%-?%d+)")
  if (age and tonumber(age) <= 0) or lower:find("1970", 1, true) then
    jar[name] = nil
  else
    set_cookie(name, value)
  end
end

local function cookie_header()
  local pairs_ = {}
  for _, name in ipairs(cookie_order) do
    if jar[name] ~= nil then
      pairs_[#pairs_ + 1] = name .. "=" .. jar[name]
    end
  end
  return table.concat(pairs_, "; ")
end

-- base.html lists the messages it shows in this element; their cookie is then deleted.
local MESSAGES_SHOWN = '<ul class="messages"'

local function header(headers, name)
  for key, value in pairs(headers) do
    if key:lower() == name then
      return value
    end
  end
  return nil
end

local page, form_id, level, origin, pending, sent, next_took

function init(args)
  local config = read_config(args[1])
  page, form_id, out = config.page, config.form, config.out
  level = tonumber(config.message)
  for cookie in (config.cookies[id] or ""):gmatch("[^;]+") do
    local name, value = cookie:match("^%s*([^=]+)=(.*)$")
    if name then
      set_cookie(name, value)
    end
  end
  origin = "http://" .. wrk.host .. (wrk.port and (":" .. wrk.port) or "")
  math.randomseed(id)
  -- Read back by done(): plain values and tables of them cross from a thread to the main state.
  cycles, accepted, errors, next_ms, submit_ms, unverified, empty = 0, {}, {}, {}, {}, 0, false
end

local function count_error(kind)
  errors[kind] = (errors[kind] or 0) + 1
end

function request()
  local headers = { Accept = "text/html", Cookie = cookie_header() }
  sent = now_ms()
  if pending then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Origin"] = origin -- as browsers send on a POST
    return wrk.format("POST", pending.action, headers, pending.body)
  end
  return wrk.format("GET", page, headers)
end

function response(status, headers, body)
  local took = now_ms() - sent
  store_cookie(header(headers, "set-cookie"))
  if not pending then
    if status ~= 200 then
      count_error("next " .. status)
      return
    end
    if body:find(MESSAGES_SHOWN, 1, true) then
      jar["messages"] = nil
    end
    local form = read_form(body, form_id)
    if not form then
      empty = true -- the queue has nothing more for this labeler
      wrk.thread:stop()
      return
    end
    form.body = form_body(form, math.random)
    pending, next_took = form, took
    return
  end
  local location = header(headers, "location") or ""
  if status ~= 302 then
    count_error("submit " .. status)
  elseif location:sub(-#page) ~= page then
    count_error("submit refused")
  else
    local acknowledged = level == nil or has_message(jar["messages"], level)
    if acknowledged == nil then
      unverified = unverified + 1
      acknowledged = true
    end
    if not acknowledged then
      count_error("submit refused")
    elseif pending.lease then
      accepted[#accepted + 1] = pending.lease
    end
  end
  cycles = cycles + 1
  next_ms[#next_ms + 1] = next_took
  submit_ms[#submit_ms + 1] = took
  pending = nil
end

-- The main state: one id per thread, and the summary ------------------------------------------------

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

local function json_string(text)
  return '"' .. tostring(text):gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_list(values, item)
  local parts = {}
  for i, value in ipairs(values or {}) do
    parts[i] = item(value)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function json_counts(counts)
  local parts = {}
  for key, value in pairs(counts or {}) do
    parts[#parts + 1] = json_string(key) .. ":" .. string.format("%d", value)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function json_number(value)
  return string.format("%.3f", value)
end

function done(summary, latency, requests)
  local labelers = {}
  for i, thread in ipairs(threads) do
    labelers[i] = "{"
      .. ('"cycles":%d,"unverified":%d,"empty":%s,'):format(
        thread:get("cycles") or 0,
        thread:get("unverified") or 0,
        tostring(thread:get("empty") == true)
      )
      .. '"accepted":'
      .. json_list(thread:get("accepted"), json_string)
      .. ',"errors":'
      .. json_counts(thread:get("errors"))
      .. ',"next_ms":'
      .. json_list(thread:get("next_ms"), json_number)
      .. ',"submit_ms":'
      .. json_list(thread:get("submit_ms"), json_number)
      .. "}"
  end
  local e = summary.errors
  local file = assert(io.open(threads[1]:get("out"), "w"))
  file:write(
    ('{"duration_us":%d,"requests":%d,'):format(summary.duration, summary.requests),
    ('"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"status_errors":%d,'):format(
      e.connect,
      e.read,
      e.write,
      e.timeout,
      e.status
    ),
    '"labelers":[',
    table.concat(labelers, ","),
    "]}\n"
  )
  file:close()
end
