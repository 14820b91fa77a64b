#!lua name=wclab
--[[
wclab's coordination protocol, as Redis Functions (Redis >= 7.0).

The contract is docs/protocol.md: the keys of a job, every function's KEYS,
ARGV and reply, the error codes and the invariants. It is the only
description of the protocol; this file implements it and keeps the *why* of
the implementation. SIGNATURES and ARG_TYPES below are the machine-readable
part of the contract: a test (crates/coord/src/spec.rs) fails when they, the
blocks of docs/protocol.md and the Rust callers disagree.

Atomicity. Redis runs one function at a time, so a caller that crashes at
any instant leaves all of a function's effects or none. Redis never rolls a
function back, though: a write made before an error stays. So each function
first checks its whole call (KEYS, ARGV) and the state it is going to write
to (the types of the keys, the counters it adds to, the exactness of the
counts) and only then writes; a refused call changes nothing. The checks
before the first write may read, never write: XREADGROUP, which moves a task
into the pending entries, counts as a write.

Time. Every function takes `now_ms`. Empty means "use this server's clock"
(one Redis); a number is a timestamp chosen by the caller (with Raft, the
leader's clock), so that a function applied on several replicas gives the
same result on each. Nothing here is random.

Leases. With the server's clock (now_ms empty, one Redis), a task's lease is
its idle time in the consumer group: XAUTOCLAIM steals what has been idle for
longer than the lease. Idle times are each server's own clock, though, so
with a given now_ms (replicas) leases live in the `leases` sorted set
instead, scored with the given times, and a steal is XCLAIM ... TIME now_ms
of a task whose score is at least a lease old. The same log then makes the
same decisions on every replica, whenever it is applied.
]]

-- 2^53 - 1: the largest integer up to which every integer is exact in a Lua
-- number and in a sorted-set score (both are doubles).
local MAX_INT = 9007199254740991
local GROUP = 'workers'
-- (Redis 7.0 loads a library without the standard libraries: string,
-- table, math, tonumber... exist only while a function runs, so nothing
-- below uses them outside one.)

-- The functions: name, KEYS, ARGV. `(a b)*n` is the group a b repeated n
-- times, n being an earlier argument; `(a b)*` repeats to the end.
-- docs/protocol.md has the same lines; the order of KEYS is JobKeys's.
local SIGNATURES = {
  {'wclab_submit', 'tasks job submitted', 'now_ms group (id path start end)*'},
  {'wclab_claim', 'tasks dead job leases submitted spec', 'now_ms group consumer lease_ms max_deliveries'},
  {'wclab_renew', 'tasks leases', 'now_ms group consumer id'},
  {'wclab_commit', 'tasks counts tallies done job leases', 'now_ms group consumer n (id bytes)*n words tally'},
  {'wclab_fold', 'counts tallies job merging', 'now_ms group first last n words tally'},
  {'wclab_dead', 'tasks dead job leases', 'now_ms group consumer id reason'},
  {'wclab_release', 'tasks leases', 'now_ms group consumer lease_ms id'},
  {'wclab_speculate', 'tasks done spec', 'now_ms group consumer min_age_ms factor sample'},
}

-- The type of every argument name (docs/protocol.md, "Argument types").
local ARG_TYPES = {
  now_ms = 'now',
  group = 'group',
  consumer = 'consumer',
  id = 'id',
  path = 'path',
  start = 'uint',
  ['end'] = 'uint',
  lease_ms = 'uint',
  max_deliveries = 'posint',
  n = 'posint',
  bytes = 'uint',
  words = 'uint',
  tally = 'tally',
  first = 'id',
  last = 'id',
  reason = 'text',
  min_age_ms = 'uint',
  factor = 'factor',
  sample = 'sample',
}

-- The Redis type of each key of a job (a missing key is fine everywhere).
local KEY_TYPES = {
  tasks = 'stream', counts = 'zset', done = 'stream', dead = 'stream', job = 'hash',
  leases = 'zset', submitted = 'hash', spec = 'hash', merging = 'zset', tallies = 'stream',
}

---------------------------------------------------------------------------
-- Refusals. A refusal is raised as a string starting with its error code
-- (error(..., 0): no position prepended) and caught by the wrapper that
-- register() puts around each function, which returns it as an error reply.

local function refuse(code, fname, fmt, ...)
  error(code .. ' ' .. fname .. ': ' .. string.format(fmt, ...), 0)
end

-- A value as shown in an error message: at most 40 bytes, quoted, with
-- every byte outside printable ASCII escaped.
local function show(s)
  local cut = string.sub(s, 1, 40)
  cut = string.gsub(cut, "[^ -&(-~]", function(c)
    return string.format('\\x%02x', string.byte(c))
  end)
  return "'" .. cut .. (#s > 40 and "'..." or "'")
end

-- A whole number as Redis expects it: '%.0f' is exact up to 2^53, whereas
-- tostring() and '..' switch to exponents from 10^14 on.
local function int_text(v)
  return string.format('%.0f', v)
end

---------------------------------------------------------------------------
-- Argument types: each check returns the value the function works with,
-- or nil when the argument does not have the type.

-- A decimal integer in lo..hi, digits only, without sign or leading zero.
local function int_in(s, lo, hi)
  if s == '0' then
    if lo <= 0 then
      return 0
    end
    return nil
  end
  if not string.find(s, '^[1-9]%d*$') then
    return nil
  end
  local v = tonumber(s)
  if v < lo or v > hi then
    return nil
  end
  return v
end

local U64_MAX = '18446744073709551615'

local function u64_text(s)
  if s ~= '0' and not string.find(s, '^[1-9]%d*$') then
    return false
  end
  return #s < 20 or (#s == 20 and s <= U64_MAX)
end

local function check_id(s)
  local ms, seq = string.match(s, '^(%d+)%-(%d+)$')
  if ms and u64_text(ms) and u64_text(seq) and s ~= '0-0' then
    return s
  end
  return nil
end

-- a < b, for two IDs that passed check_id.
local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)%-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)%-(%d+)$')
  if am ~= bm then
    return #am < #bm or (#am == #bm and am < bm)
  end
  return #as < #bs or (#as == #bs and as < bs)
end

-- A tally (the counts of a commit, or a fold's merged counts): lines of
-- `count word\n`. Checked with one pattern substitution over the whole text,
-- which also sums the counts: the pattern match runs in C, so a tally of
-- 87 k words costs Redis tens of milliseconds, against the hundreds that as
-- many sorted-set updates cost. A word holds no ASCII whitespace (Lua's %s
-- is exactly 0x09-0x0D and 0x20), so every line parses one way. Returns
-- {text, sum, lines}, or nil and why.
local function check_tally(s)
  local sum = 0
  local rest, lines = string.gsub(s, '([1-9]%d*) [^%s]+\n', function(c)
    sum = sum + c
    return ''
  end)
  if rest ~= '' then
    -- The slow path, for the message only: the first line that does not parse.
    local at, line = 1, 1
    while true do
      local stop = string.find(s, '\n', at, true)
      local l = string.sub(s, at, stop or -1)
      if not stop or not string.find(l, '^[1-9]%d* [^%s]+\n$') then
        return nil, 'line ' .. line .. ' ' .. show(l) .. ' is not `count word\\n`'
      end
      at, line = stop + 1, line + 1
    end
  end
  if sum > MAX_INT then
    return nil, 'its counts add up to more than 2^53-1'
  end
  return {text = s, sum = sum, lines = lines}
end

local TYPES = {
  now = {'empty, or an integer in 0..2^53-1', function(s)
    if s == '' then
      return false -- the server's clock
    end
    return int_in(s, 0, MAX_INT)
  end},
  group = {"'" .. GROUP .. "'", function(s)
    if s == GROUP then
      return s
    end
  end},
  consumer = {'a string of 1 to 256 bytes', function(s)
    if #s >= 1 and #s <= 256 then
      return s
    end
  end},
  id = {'a stream ID <ms>-<seq> (decimal, 64-bit each, not 0-0)', check_id},
  path = {'an absolute path (starting with /) of at most 4096 bytes, without NUL', function(s)
    if string.byte(s, 1) == 47 and #s <= 4096 and not string.find(s, '%z') then
      return s
    end
  end},
  uint = {'an integer in 0..2^53-1', function(s)
    return int_in(s, 0, MAX_INT)
  end},
  posint = {'an integer in 1..2^53-1', function(s)
    return int_in(s, 1, MAX_INT)
  end},
  tally = {'a tally (lines `count word\\n`: count in 1..2^53-1, word without ASCII whitespace)', function(s)
    return check_tally(s)
  end},
  text = {'a string of 1 to 65536 bytes', function(s)
    if #s >= 1 and #s <= 65536 then
      return s
    end
  end},
  factor = {'a decimal number in 0..1000000', function(s)
    if string.find(s, '^%d+%.?%d*$') or string.find(s, '^%d+%.?%d*[eE][-+]?%d+$') then
      local v = tonumber(s)
      if v and v >= 0 and v <= 1000000 then
        return v
      end
    end
  end},
  sample = {'an integer in 1..10000', function(s)
    return int_in(s, 1, 10000)
  end},
}

---------------------------------------------------------------------------
-- Signatures, parsed once (at the first call: see above).

local function words_of(s)
  local out = {}
  for w in string.gmatch(s, '%S+') do
    out[#out + 1] = w
  end
  return out
end

-- 'now_ms n (id bytes)*n' -> {{name='now_ms'}, {name='n'}, {names={'id','bytes'}, times='n'}}
local function parse_argv(s)
  local items, pos = {}, 1
  while true do
    local from = string.find(s, '%S', pos)
    if not from then
      return items
    end
    local inner, times, after = string.match(s, '^%(([^)]*)%)%*(%w*)()', from)
    if inner then
      items[#items + 1] = {names = words_of(inner), times = times}
      pos = after
    else
      local name, next_pos = string.match(s, '^(%S+)()', from)
      items[#items + 1] = {name = name}
      pos = next_pos
    end
  end
end

-- Built at the first call (see above: no `string` while loading).
local SIG = nil

local function signature(name)
  if not SIG then
    SIG = {}
    for _, s in ipairs(SIGNATURES) do
      local sig = {name = s[1], keys = words_of(s[2]), argv = parse_argv(s[3]), keys_text = s[2]}
      for _, item in ipairs(sig.argv) do
        -- The type of each argument, looked up once.
        item.types = {}
        for j, arg in ipairs(item.names or {item.name}) do
          item.types[j] = assert(TYPES[ARG_TYPES[arg]], 'no type for argument ' .. arg)
        end
      end
      SIG[s[1]] = sig
    end
  end
  return SIG[name]
end

---------------------------------------------------------------------------
-- Checking a call.

-- KEYS must be the job's keys, in the signature's order: wclab:{J}:<role>,
-- the same J in each. A call that names other keys (counts passed as
-- tasks, another job's keys) would write where it must not.
local function check_keys(sig, keys)
  local fname = sig.name
  if #keys ~= #sig.keys then
    refuse('WCLABARG', fname, 'expects %d KEYS (%s), got %d', #sig.keys, sig.keys_text, #keys)
  end
  local prefix = 'wclab:{'
  local first = keys[1]
  local suffix = '}:' .. sig.keys[1]
  if string.sub(first, 1, #prefix) ~= prefix or string.sub(first, -#suffix) ~= suffix or #first <= #prefix + #suffix then
    refuse('WCLABARG', fname, 'KEYS[1] %s is not a job\'s %s key wclab:{<job>}:%s',
           show(first), sig.keys[1], sig.keys[1])
  end
  local job = string.sub(first, #prefix + 1, -#suffix - 1)
  for i = 2, #keys do
    local want = prefix .. job .. '}:' .. sig.keys[i]
    if keys[i] ~= want then
      refuse('WCLABARG', fname, 'KEYS[%d] %s is not %s, the %s key of job %s',
             i, show(keys[i]), show(want), sig.keys[i], show(job))
    end
  end
end

-- Checks ARGV against the signature. Returns `a`: a[name] = the value of
-- each single argument; a.groups[k] = {first = index of its first
-- argument, reps = repetitions, values = {{...}, ...}} of the k-th repeated
-- group.
local function check_argv(sig, args)
  local fname = sig.name
  local a = {groups = {}}
  local pos = 1
  local items = sig.argv
  for k = 1, #items do
    local item = items[k]
    if item.name then
      local s = args[pos]
      if s == nil then
        refuse('WCLABARG', fname, 'ARGV[%d] %s is missing (%d arguments given)', pos, item.name, #args)
      end
      local t = item.types[1]
      local v, why = t[2](s)
      if v == nil then
        if why then
          refuse('WCLABARG', fname, 'ARGV[%d] %s is not %s: %s', pos, item.name, t[1], why)
        end
        refuse('WCLABARG', fname, 'ARGV[%d] %s %s is not %s', pos, item.name, show(s), t[1])
      end
      a[item.name] = v
      pos = pos + 1
    else
      local width = #item.names
      local reps
      if item.times == '' then
        local left = #args - pos + 1
        if left % width ~= 0 then
          refuse('WCLABARG', fname, 'ARGV[%d..%d] are not whole groups of (%s): %d arguments left',
                 pos, #args, table.concat(item.names, ' '), left)
        end
        reps = left / width
      else
        reps = a[item.times]
        if #args < pos + reps * width - 1 then
          refuse('WCLABARG', fname, '%s = %d needs ARGV[%d..%d] for (%s), but the call has %d arguments',
                 item.times, reps, pos, pos + reps * width - 1, table.concat(item.names, ' '), #args)
        end
      end
      local group = {first = pos, reps = reps}
      do
        local values = {}
        for r = 1, reps do
          local row = {}
          for j = 1, width do
            local at = pos + (r - 1) * width + j - 1
            local t = item.types[j]
            local v = t[2](args[at])
            if v == nil then
              refuse('WCLABARG', fname, 'ARGV[%d] %s %s is not %s', at, item.names[j], show(args[at]), t[1])
            end
            row[j] = v
          end
          values[r] = row
        end
        group.values = values
      end
      a.groups[#a.groups + 1] = group
      pos = pos + reps * width
    end
  end
  if pos <= #args then
    refuse('WCLABARG', fname, 'takes %d arguments, got %d (ARGV[%d] %s and after are extra)',
           pos - 1, #args, pos, show(args[pos]))
  end
  return a
end

-- Every key must hold its type, or nothing. `merging` is scratch: whatever
-- it holds is garbage, dropped by wclab_fold before it builds there.
local function check_types(sig, keys)
  for i, key in ipairs(keys) do
    local want = KEY_TYPES[sig.keys[i]]
    if sig.keys[i] ~= 'merging' then
      local t = redis.call('TYPE', key).ok
      if t ~= 'none' and t ~= want then
        refuse('WCLABSTATE', sig.name, '%s is a %s, not a %s', show(key), t, want)
      end
    end
  end
end

-- The hash fields that HINCRBY will add to: each absent or an integer that
-- stays exact after its increment. adds = {field, increment, ...}.
local function check_counters(fname, key, adds)
  local fields = {}
  for i = 1, #adds, 2 do
    fields[#fields + 1] = adds[i]
  end
  local values = redis.call('HMGET', key, unpack(fields))
  for i, field in ipairs(fields) do
    local s = values[i]
    if s then
      local v = (s == '0' or string.find(s, '^%-?[1-9]%d*$')) and tonumber(s)
      if not v or v < -MAX_INT or v + adds[2 * i] > MAX_INT then
        refuse('WCLABSTATE', fname, '%s field %s is %s: not an integer that stays below 2^53 after adding %s',
               show(key), field, show(s), int_text(adds[2 * i]))
      end
    end
  end
end

-- The time of the call: the given one, or this server's clock.
local function clock(given)
  if given then
    return given
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Registers a function whose calls are checked first: `check(keys, args)`
-- raises a refusal or returns what `run(keys, args, checked)` needs. Only
-- run writes.
local function register(name, check, run)
  redis.register_function(name, function(keys, args)
    local ok, checked = pcall(check, signature(name), keys, args)
    if not ok then
      return redis.error_reply(tostring(type(checked) == 'table' and checked.err or checked))
    end
    return run(keys, args, checked)
  end)
end

-- The usual check: KEYS, ARGV, key types.
local function checked_call(sig, keys, args)
  check_keys(sig, keys)
  local a = check_argv(sig, args)
  check_types(sig, keys)
  return a
end

---------------------------------------------------------------------------
-- Helpers of the functions (after the checks).

-- The text of an error caught by pcall (a string, or a table with `err`).
local function errtext(e)
  if type(e) == 'table' then
    return tostring(e.err)
  end
  return tostring(e)
end

-- XADD with an ID derived from `ms`, never `*`: deterministic given the
-- stream's state. If `ms` is behind the stream's last ID (a clock that went
-- back, a new leader), the entry goes right after the last ID instead.
local function append(key, ms, fields)
  local ok, id = pcall(redis.call, 'XADD', key, int_text(ms) .. '-*', unpack(fields))
  if ok then
    return id
  end
  local info = redis.call('XINFO', 'STREAM', key)
  local last
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = info[i + 1]
    end
  end
  local last_ms = string.match(last, '^(%d+)-')
  return redis.call('XADD', key, last_ms .. '-*', unpack(fields))
end

-- The pending-entry record of task `id`: {id, consumer, idle_ms, deliveries}
-- or nil when the task is not pending: never delivered, acknowledged, or
-- unknown to this Redis (restored from a snapshot older than the job, so
-- that the stream or its group does not exist). Only reads, so it may be
-- used in checks.
local function pending(tasks, id)
  local ok, p = pcall(redis.call, 'XPENDING', tasks, GROUP, id, id, 1)
  if not ok then
    if string.find(errtext(p), '^NOGROUP') then
      return nil
    end
    return error(p)
  end
  return p[1]
end

local function entry_fields(entry)
  local f = {}
  local kv = entry[2]
  for i = 1, #kv, 2 do
    f[kv[i]] = kv[i + 1]
  end
  return f
end

-- Acknowledges a pending task and records it in the dead-letter stream.
-- `counter` is the job field it adds to: files_dead for a task of the job,
-- entries_foreign for a stream entry the job never submitted (which must
-- not count towards finishing the job). The caller checked both counters.
local function bury(tasks, dead, job, leases, consumer, ms, id, reason, deliveries, counter)
  redis.call('ZREM', leases, id)
  local entry = redis.call('XRANGE', tasks, id, id)[1]
  local path = ''
  if entry then
    path = entry_fields(entry).path or ''
  end
  redis.call('XACK', tasks, GROUP, id)
  append(dead, ms, {'task', id, 'path', path, 'reason', reason,
                    'worker', consumer, 'attempts', int_text(deliveries)})
  redis.call('HINCRBY', job, counter or 'files_dead', 1)
end

-- The record of a task in the `submitted` hash. A path has no NUL (checked),
-- so the record is unambiguous.
local function task_record(path, start, stop)
  return path .. '\0' .. start .. '\0' .. stop
end

-- Was this stream entry written by wclab_submit, exactly as it is? An entry
-- added by hand (redis-cli XADD) is not, even if it names a file of the job:
-- reading it would count that file twice.
local function was_submitted(submitted, entry)
  local f = entry_fields(entry)
  local want = redis.call('HGET', submitted, entry[1])
  return want ~= false and want == task_record(f.path or '', f.start or '', f['end'] or '')
end

-- What changes whenever the job is submitted (again): workers cache the
-- job's description under it, instead of reading it for every task.
local function job_stamp(job)
  local ms = redis.call('HGET', job, 'submitted_ms') or ''
  local n = redis.call('HGET', job, 'submissions') or ''
  return ms .. '/' .. n
end

---------------------------------------------------------------------------
-- wclab_submit: adds tasks with the caller's deterministic IDs; an ID that
-- is already in the stream is skipped, so that submitting the same job
-- again (after a restore lost its tail, say) adds exactly what is missing.

local function check_submit(sig, keys, args)
  check_keys(sig, keys)
  local a = check_argv(sig, args)
  local tasks = keys[1]
  local rows = a.groups[1].values
  for r, row in ipairs(rows) do
    local id, start, stop = row[1], row[3], row[4]
    local at = a.groups[1].first + (r - 1) * 4
    if r > 1 and not id_less(rows[r - 1][1], id) then
      refuse('WCLABARG', sig.name, 'ARGV[%d] id %s is not above the previous task\'s %s: IDs must increase',
             at, show(id), show(rows[r - 1][1]))
    end
    if start > stop then
      refuse('WCLABARG', sig.name, 'ARGV[%d] start %s is after ARGV[%d] end %s',
             at + 2, int_text(start), at + 3, int_text(stop))
    end
  end
  check_types(sig, keys)
  -- XADD takes only IDs above the stream's last one: each new ID must be
  -- above it (and the call's IDs increase, so no ID comes twice).
  local last = nil
  if redis.call('EXISTS', tasks) == 1 then
    local info = redis.call('XINFO', 'STREAM', tasks)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        last = info[i + 1]
      end
    end
  end
  local new = {}
  for r, row in ipairs(rows) do
    local id = row[1]
    local exists = #redis.call('XRANGE', tasks, id, id) > 0
    if not exists and last and not id_less(last, id) then
      refuse('WCLABSTATE', sig.name, 'task %s is not in %s, whose last ID is %s: it cannot be added any more',
             id, show(tasks), last)
    end
    new[r] = not exists
  end
  check_counters(sig.name, keys[2], {'submissions', 1})
  a.new = new
  return a
end

local function submit(keys, args, a)
  local tasks, job, submitted = keys[1], keys[2], keys[3]
  local ms = int_text(clock(a.now_ms))
  local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', tasks, GROUP, '0', 'MKSTREAM')
  if not ok and not string.find(errtext(err), '^BUSYGROUP') then
    return error(err) -- not reachable: the key is a stream or nothing (checked)
  end
  local added = 0
  local first = a.groups[1].first
  for r = 1, a.groups[1].reps do
    local i = first + (r - 1) * 4
    local id = args[i]
    redis.call('HSET', submitted, id, task_record(args[i + 1], args[i + 2], args[i + 3]))
    if a.new[r] then
      redis.call('XADD', tasks, id, 'path', args[i + 1], 'start', args[i + 2],
                 'end', args[i + 3], 'injected', ms)
      added = added + 1
    end
  end
  redis.call('HSET', job, 'submitted_ms', ms)
  redis.call('HINCRBY', job, 'submissions', 1)
  return added
end

register('wclab_submit', check_submit, submit)

---------------------------------------------------------------------------
-- wclab_claim: hands one task to `consumer`, a new one if any, else one
-- whose lease ran out; a stolen task delivered too often, or an entry that
-- wclab_submit did not write, is dead-lettered instead. The time of the
-- hand-out goes to spec as claimed:<id> (a renewal leaves it alone), so that
-- wclab_speculate can tell how long a task has been running rather than how
-- long it has existed.

local function check_claim(sig, keys, args)
  local a = checked_call(sig, keys, args)
  check_counters(sig.name, keys[3], {'files_dead', 1, 'entries_foreign', 1})
  return a
end

local function claim(keys, args, a)
  local tasks, dead, job, leases, submitted, spec = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  local ms = clock(a.now_ms)
  local given_time = a.now_ms ~= false
  local consumer, lease_ms, max_deliveries = a.consumer, a.lease_ms, a.max_deliveries

  local entry, deliveries
  local ok, fresh = pcall(redis.call, 'XREADGROUP', 'GROUP', GROUP, consumer,
                          'COUNT', 1, 'STREAMS', tasks, '>')
  if not ok then
    if string.find(errtext(fresh), '^NOGROUP') then
      return nil -- the job has not been submitted (yet): nothing to do
    end
    return error(fresh)
  end
  if fresh and fresh[1] and #fresh[1][2] > 0 then
    entry = fresh[1][2][1]
    deliveries = 1
    if given_time then
      -- The delivery time, like everything else, is the given clock's.
      redis.call('XCLAIM', tasks, GROUP, consumer, 0, entry[1], 'TIME', ms, 'JUSTID')
      redis.call('ZADD', leases, ms, entry[1])
    end
  else
    if given_time then
      entry = nil
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', ms - lease_ms, 'LIMIT', 0, 10)) do
        if pending(tasks, id) then
          -- Without JUSTID, XCLAIM counts a delivery, like XAUTOCLAIM.
          entry = redis.call('XCLAIM', tasks, GROUP, consumer, 0, id, 'TIME', ms)[1]
          redis.call('ZADD', leases, ms, id)
          break
        end
        redis.call('ZREM', leases, id) -- finished or buried meanwhile
      end
    else
      local stolen = redis.call('XAUTOCLAIM', tasks, GROUP, consumer, lease_ms, '0-0', 'COUNT', 1)
      entry = stolen[2][1]
    end
    if not entry then
      return nil
    end
    local p = pending(tasks, entry[1])
    deliveries = p and tonumber(p[4]) or 1
    if deliveries > max_deliveries then
      bury(tasks, dead, job, leases, consumer, ms, entry[1],
           'delivered ' .. int_text(deliveries) .. ' times without a commit (poison task, or workers dying on it)',
           deliveries)
      return {'dead', entry[1]}
    end
  end
  if not was_submitted(submitted, entry) then
    bury(tasks, dead, job, leases, consumer, ms, entry[1],
         'stream entry not written by wclab_submit (added by hand?): never read',
         deliveries, 'entries_foreign')
    return {'dead', entry[1]}
  end
  redis.call('HSET', spec, 'claimed:' .. entry[1], int_text(ms))
  local f = entry_fields(entry)
  return {'task', entry[1], f.path or '', f.start or '0', f['end'] or '0',
          f.injected or '0', deliveries, job_stamp(job)}
end

register('wclab_claim', check_claim, claim)

---------------------------------------------------------------------------
-- wclab_renew: renews `consumer`'s lease on task `id` if it still owns it.
-- A worker that was robbed must not take the task back: hence the check.

local function renew(keys, args, a)
  local tasks, leases = keys[1], keys[2]
  local consumer, id = a.consumer, a.id
  local p = pending(tasks, id)
  if not p or p[2] ~= consumer then
    return 0
  end
  if a.now_ms then
    redis.call('XCLAIM', tasks, GROUP, consumer, 0, id, 'TIME', a.now_ms, 'JUSTID')
    redis.call('ZADD', leases, a.now_ms, id)
  else
    redis.call('XCLAIM', tasks, GROUP, consumer, 0, id, 'JUSTID')
  end
  return 1
end

register('wclab_renew', checked_call, renew)

---------------------------------------------------------------------------
-- wclab_commit: the gate. Every task must still be pending, i.e. nobody has
-- committed it yet (and this Redis knows of it: a Redis restored from an
-- older snapshot may have forgotten the delivery, in which case the task
-- will be delivered again). If so, each is acknowledged, the commit's
-- tally is appended to `tallies` and a completion record to `done`;
-- otherwise nothing changes and the IDs that were not pending are
-- returned, so that the caller can commit the rest. With n = 1 this is
-- exactly "XACK, and only if it returned 1, add the counts".
--
-- Why a tally and not the sorted set. A sorted-set update costs Redis a
-- microsecond or two per word (ZINCRBY from Lua; a ZUNIONSTORE rebuilds
-- all of `counts`), and a big merged commit carries most of the
-- vocabulary, so a job's Redis work grew with commits x vocabulary. A tally
-- is one string: checking it is one pattern match in C, storing it a
-- memcpy. The job's counts are `counts` plus every tally not folded yet;
-- wclab_fold moves tallies into `counts` (once at the end of a batch,
-- every few seconds in a stream), which costs a sorted-set update per
-- distinct word of the merged tallies, so per fold, not per commit.
--
-- Exactness: `tally_words` in `job` is the sum of the words of the tallies
-- not folded yet; a commit is refused if the largest count in `counts`
-- plus that plus its own words could pass 2^53-1 (no count of the job can
-- be larger than that sum).

-- The largest count in a sorted set (0 when empty).
local function top_score(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return tonumber(top[2] or '0')
end

-- No task twice in one commit: its counts would be in the merged words
-- twice, its XACK once.
local function check_distinct_tasks(sig, a)
  local group, seen = a.groups[1], {}
  for r, row in ipairs(group.values) do
    if seen[row[1]] then
      refuse('WCLABARG', sig.name, 'ARGV[%d] task %s is given twice in one commit',
             group.first + (r - 1) * 2, row[1])
    end
    seen[row[1]] = true
  end
end

-- `counts` plus the unfolded tallies plus `adding` must stay exact.
local function check_exact(sig, counts, job, adding)
  if adding == 0 then
    return
  end
  local pending_words = tonumber(redis.call('HGET', job, 'tally_words') or '0') or 0
  local top = top_score(counts)
  if top + pending_words + adding > MAX_INT then
    refuse('WCLABSTATE', sig.name, '%s holds a count of %s and the tallies not folded yet %s words: adding %s more could pass 2^53-1, where counts stop being exact',
           show(counts), int_text(top), int_text(pending_words), int_text(adding))
  end
end

local function check_commit(sig, keys, args)
  check_keys(sig, keys)
  local a = check_argv(sig, args)
  local tally = a.tally
  if tally.sum ~= a.words then
    refuse('WCLABARG', sig.name, 'ARGV[%d] words %s is not the sum of the tally\'s counts, %s',
           #args - 1, int_text(a.words), int_text(tally.sum))
  end
  check_distinct_tasks(sig, a)
  check_types(sig, keys)
  local tasks, counts, job = keys[1], keys[2], keys[5]
  local group = a.groups[1]
  local records, gone = {}, {}
  local bytes = 0
  for r, row in ipairs(group.values) do
    local id, nbytes = row[1], row[2]
    local at = group.first + (r - 1) * 2
    local entry = redis.call('XRANGE', tasks, id, id)[1]
    local f = entry and entry_fields(entry) or {}
    local start, stop = tonumber(f.start or ''), tonumber(f['end'] or '')
    if start and stop and nbytes ~= stop - start then
      refuse('WCLABARG', sig.name, 'ARGV[%d] bytes %s of task %s is not its end - start = %s',
             at + 1, int_text(nbytes), id, int_text(stop - start))
    end
    bytes = bytes + nbytes
    local p = pending(tasks, id)
    if p then
      records[#records + 1] = {id, args[at + 1], p[4], f.injected or ''}
    else
      gone[#gone + 1] = id
    end
  end
  if bytes > MAX_INT then
    refuse('WCLABARG', sig.name, 'the tasks\' bytes add up to more than 2^53-1')
  end
  check_exact(sig, counts, job, a.words)
  check_counters(sig.name, job, {'files_done', a.n, 'bytes_done', bytes,
                                 'words_done', a.words, 'tally_words', a.words})
  a.records, a.gone, a.bytes = records, gone, bytes
  return a
end

local function commit(keys, args, a)
  local tasks, tallies, done, job, leases = keys[1], keys[3], keys[4], keys[5], keys[6]
  if #a.gone > 0 then
    local reply = {0}
    for _, id in ipairs(a.gone) do
      reply[#reply + 1] = id
    end
    return reply
  end
  local ms = clock(a.now_ms)
  if a.tally.lines > 0 then
    append(tallies, ms, {'words', int_text(a.words), 'tally', a.tally.text})
    redis.call('HINCRBY', job, 'tally_words', int_text(a.words))
  end
  for _, r in ipairs(a.records) do
    local id = r[1]
    redis.call('XACK', tasks, GROUP, id)
    redis.call('ZREM', leases, id)
    append(done, ms, {'task', id, 'worker', a.consumer, 'injected', r[4],
                      'committed', int_text(ms), 'attempts', int_text(r[3]),
                      'bytes', r[2]})
  end
  redis.call('HINCRBY', job, 'files_done', a.n)
  redis.call('HINCRBY', job, 'bytes_done', int_text(a.bytes))
  redis.call('HINCRBY', job, 'words_done', int_text(a.words))
  return {1, a.n}
end

register('wclab_commit', check_commit, commit)

---------------------------------------------------------------------------
-- wclab_fold: moves the tallies up to `last` into `counts`. The caller read
-- them (XRANGE tallies - last: `n` entries from `first` to `last`), merged
-- them and sends the merged tally, with `words` its total. Only a fold
-- removes tallies (always every one up to its `last`), and commits append
-- after the stream's last ID, so the entries up to `last` are exactly the
-- ones the caller read if there are still `n` of them and the first is
-- `first`; otherwise another fold took some first, and nothing changes
-- (reply {0}). Why `first` too: a Redis restored from an older checkpoint
-- between the caller's read and its call holds tallies up to `last` that
-- a later fold had taken (and lacks those of commits it forgot); they can
-- be as many, with as many words, as the caller read, and the fold would
-- delete them and add words whose tasks are committed again. Those
-- tallies come before every one the caller read, so the first differs. The merged words must add up to the words of the tallies it
-- replaces (a wrong merge is refused); the words themselves are the
-- caller's part, as they were when commits carried them.
--
-- Into an empty `counts` (the batch's one fold at the end) the words go
-- with multi-member ZADDs into `merging` renamed to `counts`, the cheapest
-- way Redis builds a sorted set; into a non-empty one, with ZINCRBY.

-- Arguments per multi-member ZADD: below Lua's unpack limit (8000), even.
local ZADD_CHUNK = 7000

local function check_fold(sig, keys, args)
  check_keys(sig, keys)
  local a = check_argv(sig, args)
  if a.tally.sum ~= a.words then
    refuse('WCLABARG', sig.name, 'ARGV[%d] words %s is not the sum of the tally\'s counts, %s',
           #args - 1, int_text(a.words), int_text(a.tally.sum))
  end
  check_types(sig, keys)
  local counts, tallies, job = keys[1], keys[2], keys[3]
  local taken = redis.call('XRANGE', tallies, '-', a.last, 'COUNT', a.n + 1)
  a.ids = {}
  if #taken ~= a.n or taken[1][1] ~= a.first then
    a.stale = true
    return a
  end
  local words = 0
  for i, e in ipairs(taken) do
    a.ids[i] = e[1]
    local w = tonumber(entry_fields(e).words or '')
    if not w then
      refuse('WCLABSTATE', sig.name, 'tally %s in %s has no words field', e[1], show(tallies))
    end
    words = words + w
  end
  if words ~= a.words then
    refuse('WCLABARG', sig.name, 'ARGV[%d] words %s is not the sum of the words of the %d tallies up to %s, %s',
           #args - 1, int_text(a.words), a.n, a.last, int_text(words))
  end
  -- tally_words is checked like any counter first: a value that Lua reads
  -- as a number but HINCRBY refuses ('1e3', '7.0') would otherwise fail
  -- the call after the words went into `counts` and the tallies were gone.
  check_counters(sig.name, job, {'tally_words', -a.words, 'word_updates', a.tally.lines, 'folds', 1})
  local pending_words = tonumber(redis.call('HGET', job, 'tally_words') or '0') or 0
  if pending_words < a.words then
    refuse('WCLABSTATE', sig.name, '%s field tally_words is %s, less than the %s words folded',
           show(job), int_text(pending_words), int_text(a.words))
  end
  if top_score(counts) + a.words > MAX_INT then
    refuse('WCLABSTATE', sig.name, 'folding %s words into %s could pass 2^53-1', int_text(a.words), show(counts))
  end
  return a
end

-- Calls ZADD or ZINCRBY on `key` for every line of a checked tally.
local function add_tally(key, text, zadd)
  local buf, k = {}, 0
  for c, w in string.gmatch(text, '(%d+) ([^\n]+)\n') do
    if zadd then
      buf[k + 1], buf[k + 2] = c, w
      k = k + 2
      if k >= ZADD_CHUNK then
        redis.call('ZADD', key, unpack(buf, 1, k))
        k = 0
      end
    else
      redis.call('ZINCRBY', key, c, w)
    end
  end
  if k > 0 then
    redis.call('ZADD', key, unpack(buf, 1, k))
  end
end

local function fold(keys, args, a)
  local counts, tallies, job, merging = keys[1], keys[2], keys[3], keys[4]
  if a.stale then
    return {0}
  end
  local text = a.tally.text
  if a.tally.lines > 0 then
    local into_empty = redis.call('ZCARD', counts) == 0
    if into_empty then
      -- Scratch: whatever a failed call left there goes first.
      redis.call('UNLINK', merging)
      add_tally(merging, text, true)
      if redis.call('ZCARD', merging) == a.tally.lines then
        redis.call('RENAME', merging, counts)
      else
        -- A word given twice: ZADD kept one of its counts, ZINCRBY adds both.
        redis.call('UNLINK', merging)
        add_tally(counts, text, false)
      end
    else
      add_tally(counts, text, false)
    end
  end
  for _, id in ipairs(a.ids) do
    redis.call('XDEL', tallies, id)
  end
  redis.call('HINCRBY', job, 'tally_words', '-' .. int_text(a.words))
  redis.call('HINCRBY', job, 'word_updates', a.tally.lines)
  redis.call('HINCRBY', job, 'folds', 1)
  return {1, a.n}
end

register('wclab_fold', check_fold, fold)

---------------------------------------------------------------------------
-- wclab_dead: dead-letters a task that can never be counted (missing,
-- unreadable, not a regular file, outside the job's inputs, malformed).
-- Gated like a commit: only a still-pending task is buried.

local function check_dead(sig, keys, args)
  local a = checked_call(sig, keys, args)
  check_counters(sig.name, keys[3], {'files_dead', 1})
  return a
end

local function dead_letter(keys, args, a)
  local tasks, dead, job, leases = keys[1], keys[2], keys[3], keys[4]
  local p = pending(tasks, a.id)
  if not p then
    return 0
  end
  bury(tasks, dead, job, leases, a.consumer, clock(a.now_ms), a.id, a.reason, p[4])
  return 1
end

register('wclab_dead', check_dead, dead_letter)

---------------------------------------------------------------------------
-- wclab_release: gives back a task that `consumer` holds but will not
-- finish (it was told to stop): the next claim of any worker may take it at
-- once instead of after a lease. Its delivery count is left as it is.

local function release(keys, args, a)
  local tasks, leases = keys[1], keys[2]
  local consumer, id = a.consumer, a.id
  local p = pending(tasks, id)
  if not p or p[2] ~= consumer then
    return 0
  end
  if a.now_ms then
    redis.call('ZADD', leases, 0, id)
  else
    redis.call('XCLAIM', tasks, GROUP, consumer, 0, id, 'IDLE', a.lease_ms, 'JUSTID')
  end
  return 1
end

register('wclab_release', checked_call, release)

---------------------------------------------------------------------------
-- wclab_speculate (lab 3): hands an idle `consumer` a backup copy of a task
-- that has been running much longer than tasks usually take. Ownership does
-- not change: the task stays in its owner's pending list, the backup counts
-- it too, and whichever commit lands first counts; the commit's gate makes
-- the other a no-op.
--
-- "Much longer": the task's run time so far, now minus the time it was last
-- handed out (claimed:<id>, written by wclab_claim), is at least
-- max(min_age_ms, factor x the median run time of the last `sample`
-- commits), a run time being the commit time minus the hand-out to the
-- worker whose commit counted (backup_at:<id> when that was the backup).
-- Time spent queued before the hand-out is not running time, so a burst of
-- injections does not make every task look slow. All the times are the
-- functions' `now_ms`, never XPENDING's idle times (renewals reset those,
-- and with a given now_ms they are each replica's clock). Workers ask only
-- when idle, when nothing is queued, so a task that old is held by a
-- straggler or by a dead worker whose lease has not run out yet.

local function check_speculate(sig, keys, args)
  local a = checked_call(sig, keys, args)
  check_counters(sig.name, keys[3], {'backups', 1})
  return a
end

local function speculate(keys, args, a)
  local tasks, done, spec = keys[1], keys[2], keys[3]
  local ms = clock(a.now_ms)
  local consumer = a.consumer

  local ok, held = pcall(redis.call, 'XPENDING', tasks, GROUP, '-', '+', 100)
  if not ok then
    if string.find(errtext(held), '^NOGROUP') then
      return nil
    end
    return error(held)
  end
  if #held == 0 then
    return nil
  end

  local runs = {}
  for _, e in ipairs(redis.call('XREVRANGE', done, '+', '-', 'COUNT', a.sample)) do
    local f = entry_fields(e)
    local started
    if f.task and f.worker and redis.call('HGET', spec, 'backup:' .. f.task) == f.worker then
      started = tonumber(redis.call('HGET', spec, 'backup_at:' .. f.task))
    elseif f.task then
      started = tonumber(redis.call('HGET', spec, 'claimed:' .. f.task))
    end
    local committed = tonumber(f.committed)
    if started and committed then
      runs[#runs + 1] = committed - started
    end
  end
  table.sort(runs)
  local typical = runs[math.floor((#runs + 1) / 2)] or 0
  local threshold = math.max(a.min_age_ms, a.factor * typical)

  for _, p in ipairs(held) do
    local id, owner, deliveries = p[1], p[2], p[4]
    if owner ~= consumer and redis.call('HEXISTS', spec, 'backup:' .. id) == 0 then
      local claimed = tonumber(redis.call('HGET', spec, 'claimed:' .. id))
      local entry = redis.call('XRANGE', tasks, id, id)[1]
      if claimed and entry and ms - claimed >= threshold then
        local f = entry_fields(entry)
        redis.call('HSET', spec, 'backup:' .. id, consumer, 'backup_at:' .. id, int_text(ms))
        redis.call('HINCRBY', spec, 'backups', 1)
        return {'task', id, f.path or '', f.start or '0', f['end'] or '0',
                f.injected or '0', deliveries}
      end
    end
  end
  return nil
end

register('wclab_speculate', check_speculate, speculate)
