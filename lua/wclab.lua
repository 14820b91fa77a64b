#!lua name=wclab
--[[
wclab's coordination protocol, as Redis Functions (Redis >= 7.0).

Every change a job makes to Redis goes through one of these functions, so
each change is atomic: Redis runs one function at a time, and a crash of the
caller at any instant leaves either all of a function's effects or none.

Keys of a job J (all share the hash tag {J}):
  wclab:{J}:tasks   stream   one entry per task: path, start, end, injected
                             consumer group "workers" hands them out
  wclab:{J}:counts  zset     word -> count
  wclab:{J}:done    stream   one entry per committed task (latency record)
  wclab:{J}:dead    stream   one entry per dead-lettered task, with its reason
  wclab:{J}:job     hash     the job's description and running totals
  wclab:{J}:spec    hash     speculative execution's bookkeeping: claimed:<id> = when the
                             task was last handed out (wclab_claim), backup:<id>,
                             backup_at:<id>, backups (wclab_speculate)
  wclab:{J}:merging zset     scratch of wclab_commit, empty between calls
  wclab:{J}:leases  zset     task id -> time of its owner's last claim or renewal
                             (ms, caller's clock); used when now_ms is given
  wclab:{J}:submitted hash   task id -> path NUL start NUL end, as submitted:
                             an entry not in it (written by hand) is never read

Time. Every function takes `now_ms` as an argument. An empty string means
"use this server's clock" (one Redis); a number is a timestamp chosen by the
caller (with Raft, the leader's clock), so that a function applied on several
replicas gives the same result on each. Nothing here is random.

Leases. With the server's clock (now_ms empty, one Redis), a task's lease is
its idle time in the consumer group: XAUTOCLAIM steals what has been idle for
longer than the lease. Idle times are each server's own clock, though, so
with a given now_ms (replicas) leases live in the `leases` sorted set
instead, scored with the given times, and a steal is XCLAIM ... TIME now_ms
of a task whose score is at least a lease old. The same log then makes the
same decisions on every replica, whenever it is applied.
]]

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

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
  local ok, id = pcall(redis.call, 'XADD', key, ms .. '-*', unpack(fields))
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
-- that the stream or its group does not exist).
local function pending(tasks, group, id)
  local ok, p = pcall(redis.call, 'XPENDING', tasks, group, id, id, 1)
  if not ok then
    if string.find(errtext(p), 'NOGROUP') then
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
-- not count towards finishing the job).
local function bury(keys3, group, consumer, ms, id, reason, deliveries, counter)
  local tasks, dead, job, leases = keys3[1], keys3[2], keys3[3], keys3[4]
  if leases then
    redis.call('ZREM', leases, id)
  end
  local entry = redis.call('XRANGE', tasks, id, id)[1]
  local path = ''
  if entry then
    path = entry_fields(entry).path or ''
  end
  redis.call('XACK', tasks, group, id)
  append(dead, ms, {'task', id, 'path', path, 'reason', reason,
                    'worker', consumer, 'attempts', tostring(deliveries)})
  redis.call('HINCRBY', job, counter or 'files_dead', 1)
end

-- The record of a task in the `submitted` hash.
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

--[[
wclab_submit KEYS: tasks, job, submitted
             ARGV: now_ms, group, then id, path, start, end ...

Adds tasks with the caller's deterministic IDs, creating the consumer group
on first use, and records each in `submitted`. An ID that is already in the
stream is skipped, so submitting the same job again (after a Redis restore
lost its tail, say) adds exactly what is missing. Returns the number of
tasks added.
]]
local function submit(keys, args)
  local tasks, job, submitted = keys[1], keys[2], keys[3]
  local ms = now_ms(args[1])
  local group = args[2]
  local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', tasks, group, '0', 'MKSTREAM')
  if not ok and not string.find(errtext(err), 'BUSYGROUP') then
    return redis.error_reply(errtext(err))
  end
  local added = 0
  for i = 3, #args, 4 do
    local id = args[i]
    redis.call('HSET', submitted, id, task_record(args[i + 1], args[i + 2], args[i + 3]))
    if #redis.call('XRANGE', tasks, id, id) == 0 then
      local added_ok, e = pcall(redis.call, 'XADD', tasks, id,
        'path', args[i + 1], 'start', args[i + 2], 'end', args[i + 3],
        'injected', tostring(ms))
      if not added_ok then
        -- Only possible if a later task survived while this one was lost,
        -- which a consistent snapshot cannot produce: say so loudly.
        return redis.error_reply('wclab: cannot re-add task ' .. id .. ': ' .. errtext(e))
      end
      added = added + 1
    end
  end
  redis.call('HSET', job, 'submitted_ms', tostring(ms))
  redis.call('HINCRBY', job, 'submissions', 1)
  return added
end

-- What changes whenever the job is submitted (again): workers cache the
-- job's description under it, instead of reading it for every task.
local function job_stamp(job)
  local ms = redis.call('HGET', job, 'submitted_ms') or ''
  local n = redis.call('HGET', job, 'submissions') or ''
  return ms .. '/' .. n
end

--[[
wclab_claim KEYS: tasks, dead, job, leases, submitted[, spec]
            ARGV: now_ms, group, consumer, lease_ms, max_deliveries

Hands one task to `consumer`: a new one if any (XREADGROUP), else one whose
owner has been silent for longer than the lease (XAUTOCLAIM; with a given
now_ms, the `leases` set and XCLAIM ... TIME, see "Leases" above). A stolen
task delivered more than max_deliveries times is dead-lettered instead, and
so is an entry that wclab_submit did not write (see `submitted`).
With a `spec` key, the time of the hand-out is written to it as
claimed:<id> (a renewal leaves it alone), so that wclab_speculate can tell
how long a task has been running rather than how long it has existed.
Returns nil when there is nothing to do, otherwise
  {'task', id, path, start, end, injected, deliveries, job_stamp}  or  {'dead', id}
where job_stamp changes whenever the job is submitted again (its
description may have changed).
]]
local function claim(keys, args)
  local tasks, dead, job, leases, submitted = keys[1], keys[2], keys[3], keys[4], keys[5]
  local ms = now_ms(args[1])
  local given_time = args[1] ~= '' and leases ~= nil
  local group, consumer = args[2], args[3]
  local lease_ms, max_deliveries = tonumber(args[4]), tonumber(args[5])

  local entry, deliveries
  local ok, fresh = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer,
                          'COUNT', 1, 'STREAMS', tasks, '>')
  if not ok then
    if string.find(errtext(fresh), 'NOGROUP') then
      return nil -- the job has not been submitted (yet): nothing to do
    end
    return redis.error_reply(errtext(fresh))
  end
  if fresh and fresh[1] and #fresh[1][2] > 0 then
    entry = fresh[1][2][1]
    deliveries = 1
    if given_time then
      -- The delivery time, like everything else, is the given clock's.
      redis.call('XCLAIM', tasks, group, consumer, 0, entry[1], 'TIME', ms, 'JUSTID')
      redis.call('ZADD', leases, ms, entry[1])
    end
  else
    if given_time then
      entry = nil
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', ms - lease_ms, 'LIMIT', 0, 10)) do
        if pending(tasks, group, id) then
          -- Without JUSTID, XCLAIM counts a delivery, like XAUTOCLAIM.
          entry = redis.call('XCLAIM', tasks, group, consumer, 0, id, 'TIME', ms)[1]
          redis.call('ZADD', leases, ms, id)
          break
        end
        redis.call('ZREM', leases, id) -- finished or buried meanwhile
      end
    else
      local stolen = redis.call('XAUTOCLAIM', tasks, group, consumer, lease_ms, '0-0', 'COUNT', 1)
      entry = stolen[2][1]
    end
    if not entry then
      return nil
    end
    local p = pending(tasks, group, entry[1])
    deliveries = p and tonumber(p[4]) or 1
    if deliveries > max_deliveries then
      bury({tasks, dead, job, leases}, group, consumer, ms, entry[1],
           'delivered ' .. deliveries .. ' times without a commit (poison task, or workers dying on it)',
           deliveries)
      return {'dead', entry[1]}
    end
  end
  if not was_submitted(submitted, entry) then
    bury({tasks, dead, job, leases}, group, consumer, ms, entry[1],
         'stream entry not written by wclab_submit (added by hand?): never read',
         deliveries, 'entries_foreign')
    return {'dead', entry[1]}
  end
  if keys[6] then
    redis.call('HSET', keys[6], 'claimed:' .. entry[1], tostring(ms))
  end
  local f = entry_fields(entry)
  return {'task', entry[1], f.path or '', f.start or '0', f['end'] or '0',
          f.injected or '0', deliveries, job_stamp(job)}
end

--[[
wclab_renew KEYS: tasks, leases   ARGV: now_ms, group, consumer, id

Renews `consumer`'s lease on task `id` (resets its idle time) if it still
owns it. Returns 1 if renewed, 0 if the task was stolen or finished.
A worker that was robbed must not take the task back: hence the check.
]]
local function renew(keys, args)
  local tasks, leases = keys[1], keys[2]
  local group, consumer, id = args[2], args[3], args[4]
  local p = pending(tasks, group, id)
  if not p or p[2] ~= consumer then
    return 0
  end
  if args[1] ~= '' and leases then
    local ms = now_ms(args[1])
    redis.call('XCLAIM', tasks, group, consumer, 0, id, 'TIME', ms, 'JUSTID')
    redis.call('ZADD', leases, ms, id)
  else
    redis.call('XCLAIM', tasks, group, consumer, 0, id, 'JUSTID')
  end
  return 1
end

--[[
wclab_commit KEYS: tasks, counts, done, job, leases, merging
             ARGV: now_ms, group, consumer, n, id_1, bytes_1, ... id_n, bytes_n,
                   words, count_1, word_1, count_2, word_2, ...

Commits the counts of n tasks at once: `words` is the total of the counts,
then each distinct word with its count (ZINCRBY's own order: increment,
member). The gate: every task must still be pending, i.e. nobody has
committed it yet (and this Redis knows of it: a Redis restored from an
older snapshot may have forgotten the delivery, in which case the task will
be delivered again). If so, each is acknowledged (XACK returns 1 for each),
every word is added, and a completion record is appended to the done
stream; otherwise nothing changes and the IDs that were not pending are
returned, so the caller can commit the rest. A task given twice in one call
is an error (its words would be added twice). With n = 1 this is exactly
"XACK, and only if it returned 1, ZINCRBY".

How the words are added. A sorted set costs Redis a microsecond or two per
ZINCRBY, and a big merged commit carries most of the vocabulary: when it
has at least a quarter as many words as `counts` (and a thousand), they go
into `merging` with a few multi-member ZADDs and are summed into `counts`
with one ZUNIONSTORE, which is faster per word than that many ZINCRBYs;
`merging` is gone again when the function returns. Smaller commits (a
stream's tweets) use ZINCRBY, which costs nothing per word already there.
Returns {1, n} or {0, id, id, ...}.

wclab_commit_staged KEYS: the same
                    ARGV: now_ms, group, consumer, n, id_1, bytes_1, ... id_n, bytes_n,
                          words, distinct

The same commit, for words already in `merging` (score = count): the
caller ZADDs them there and calls this in one MULTI/EXEC, so that Redis
takes the words in its native argument parsing, not as Lua strings (which
costs more than the sorted set itself for a commit of most of the
vocabulary). `distinct` must be the number of members staged; anything
else is an error and changes nothing (say a ZADD of the same MULTI failed).
`merging` is always gone when the function returns. Not for a Raft
cluster, which has no MULTI.
]]
local UNION_MIN_WORDS = 1000
-- Arguments per multi-member ZADD: below Lua's unpack limit (8000), even.
local ZADD_CHUNK = 7000

-- Sums the sorted set `merging` (npairs members) into `counts` and removes
-- it: renamed into an empty `counts`, one ZUNIONSTORE when it is big next to
-- `counts`, ZINCRBYs when it is small (a union would rebuild all of `counts`).
local function fold_merging(counts, merging, npairs, existing)
  if existing == 0 then
    redis.call('RENAME', merging, counts)
  elseif npairs * 4 < existing then
    local flat = redis.call('ZRANGE', merging, 0, -1, 'WITHSCORES')
    for i = 1, #flat, 2 do
      redis.call('ZINCRBY', counts, flat[i + 1], flat[i])
    end
    redis.call('UNLINK', merging)
  else
    redis.call('ZUNIONSTORE', counts, 2, counts, merging)
    redis.call('UNLINK', merging)
  end
end

-- Adds the (count, word) pairs of args[first..]; returns how many.
local function add_pairs(counts, merging, args, first)
  local npairs = (#args - first + 1) / 2
  if npairs <= 0 then
    return 0
  end
  local existing = redis.call('ZCARD', counts)
  if merging == nil or npairs < UNION_MIN_WORDS or npairs * 4 < existing then
    for i = first, #args, 2 do
      redis.call('ZINCRBY', counts, args[i], args[i + 1])
    end
    return npairs
  end
  for i = first, #args, ZADD_CHUNK do
    redis.call('ZADD', merging, unpack(args, i, math.min(#args, i + ZADD_CHUNK - 1)))
  end
  fold_merging(counts, merging, npairs, existing)
  return npairs
end

local function commit_with(keys, args, staged)
  local tasks, counts, done, job, leases, merging = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  local ms = now_ms(args[1])
  local group, consumer = args[2], args[3]
  local n = tonumber(args[4])
  local function refuse(reply)
    if staged then
      redis.call('UNLINK', merging)
    end
    return reply
  end

  local records, gone, seen = {}, {0}, {}
  for i = 0, n - 1 do
    local id = args[5 + 2 * i]
    if seen[id] then
      -- Its counts would be in the merged words twice, its XACK once.
      return refuse(redis.error_reply('ERR wclab_commit: task ' .. id .. ' given twice in one commit'))
    end
    seen[id] = true
    local p = pending(tasks, group, id)
    if p then
      records[#records + 1] = {id, args[6 + 2 * i], p[4]}
    else
      gone[#gone + 1] = id
    end
  end
  if #gone > 1 then
    return refuse(gone)
  end

  local words = tonumber(args[5 + 2 * n])
  local updates
  if staged then
    local distinct = tonumber(args[6 + 2 * n])
    local present = redis.call('ZCARD', merging)
    if present ~= distinct then
      return refuse(redis.error_reply('ERR wclab_commit_staged: ' .. present .. ' words staged in ' ..
                                      merging .. ', ' .. tostring(distinct) .. ' expected'))
    end
    if distinct > 0 then
      fold_merging(counts, merging, distinct, redis.call('ZCARD', counts))
    end
    updates = distinct
  else
    updates = add_pairs(counts, merging, args, 6 + 2 * n)
  end
  -- Sorted-set updates: the Redis work of the job, reported per input MB.
  redis.call('HINCRBY', job, 'word_updates', updates)
  local bytes = 0
  for _, r in ipairs(records) do
    local id = r[1]
    local entry = redis.call('XRANGE', tasks, id, id)[1]
    local injected = entry and entry_fields(entry).injected or ''
    redis.call('XACK', tasks, group, id)
    if leases then
      redis.call('ZREM', leases, id)
    end
    append(done, ms, {'task', id, 'worker', consumer, 'injected', injected,
                      'committed', tostring(ms), 'attempts', tostring(r[3]),
                      'bytes', r[2]})
    bytes = bytes + tonumber(r[2])
  end
  redis.call('HINCRBY', job, 'files_done', n)
  redis.call('HINCRBY', job, 'bytes_done', bytes)
  redis.call('HINCRBY', job, 'words_done', words)
  return {1, n}
end

local function commit(keys, args)
  return commit_with(keys, args, false)
end

local function commit_staged(keys, args)
  return commit_with(keys, args, true)
end

--[[
wclab_dead KEYS: tasks, dead, job, leases   ARGV: now_ms, group, consumer, id, reason

Dead-letters a task that can never be counted (missing, unreadable, not a
regular file, outside the job's inputs, malformed). Gated like a commit:
only a still-pending task is buried. Returns 1 if buried, 0 if it was not
pending any more.
]]
local function dead_letter(keys, args)
  local tasks, dead, job, leases = keys[1], keys[2], keys[3], keys[4]
  local ms = now_ms(args[1])
  local group, consumer, id, reason = args[2], args[3], args[4], args[5]
  local p = pending(tasks, group, id)
  if not p then
    return 0
  end
  bury({tasks, dead, job, leases}, group, consumer, ms, id, reason, p[4])
  return 1
end

--[[
wclab_release KEYS: tasks, leases   ARGV: now_ms, group, consumer, lease_ms, id

Gives back a task that `consumer` holds but will not finish (it was told to
stop): the next claim of any worker may take it at once instead of after a
lease. Its delivery count is left as it is. Returns 1 if released, 0 if
the task was not `consumer`'s any more.
]]
local function release(keys, args)
  local tasks, leases = keys[1], keys[2]
  local group, consumer, lease_ms, id = args[2], args[3], tonumber(args[4]), args[5]
  local p = pending(tasks, group, id)
  if not p or p[2] ~= consumer then
    return 0
  end
  if args[1] ~= '' and leases then
    redis.call('ZADD', leases, 0, id)
  else
    redis.call('XCLAIM', tasks, group, consumer, 0, id, 'IDLE', lease_ms, 'JUSTID')
  end
  return 1
end

redis.register_function('wclab_submit', submit)
redis.register_function('wclab_claim', claim)
redis.register_function('wclab_renew', renew)
redis.register_function('wclab_commit', commit)
redis.register_function('wclab_commit_staged', commit_staged)
redis.register_function('wclab_dead', dead_letter)
redis.register_function('wclab_release', release)

--[[
wclab_speculate KEYS: tasks, done, spec
                ARGV: now_ms, group, consumer, min_age_ms, factor, sample

Speculative execution (lab 3): hands an idle `consumer` a backup copy of a
task that has been running much longer than tasks usually take. Ownership
does not change: the task stays in its owner's pending list, the backup
counts it too, and whichever commit lands first counts; wclab_commit's gate
("every task still pending") makes the other a no-op.

"Much longer": the task's run time so far, now minus the time it was last
handed out (claimed:<id>, written by wclab_claim), is at least
max(min_age_ms, factor x the median run time of the last `sample` commits),
a run time being the commit time minus the hand-out to the worker whose
commit counted (backup_at:<id> when that was the backup). Time spent queued
before the hand-out is not running time, so a burst of injections does not
make every task look slow. All the times are the functions' `now_ms`, never
XPENDING's idle times (renewals reset those, and with a given now_ms they
are each replica's clock). A task with no claimed:<id> (handed out by an
older wclab_claim) gets no backup. Workers ask only when idle, when nothing
is queued, so a task that old is held by a straggler or by a dead worker
whose lease has not run out yet. Each task gets one backup at most: the
`spec` hash records `backup:<id>` = the consumer and `backup_at:<id>`, and
counts `backups`. Returns nil, or a task like wclab_claim: {'task', id,
path, start, end, injected, deliveries}.
]]
local function speculate(keys, args)
  local tasks, done, spec = keys[1], keys[2], keys[3]
  local ms = now_ms(args[1])
  local group, consumer = args[2], args[3]
  local min_age, factor, sample = tonumber(args[4]), tonumber(args[5]), tonumber(args[6])

  local ok, held = pcall(redis.call, 'XPENDING', tasks, group, '-', '+', 100)
  if not ok then
    if string.find(errtext(held), 'NOGROUP') then
      return nil
    end
    return redis.error_reply(errtext(held))
  end
  if #held == 0 then
    return nil
  end

  local runs = {}
  for _, e in ipairs(redis.call('XREVRANGE', done, '+', '-', 'COUNT', sample)) do
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
  local threshold = math.max(min_age, factor * typical)

  for _, p in ipairs(held) do
    local id, owner, deliveries = p[1], p[2], p[4]
    if owner ~= consumer and redis.call('HEXISTS', spec, 'backup:' .. id) == 0 then
      local claimed = tonumber(redis.call('HGET', spec, 'claimed:' .. id))
      local entry = redis.call('XRANGE', tasks, id, id)[1]
      if claimed and entry and ms - claimed >= threshold then
        local f = entry_fields(entry)
        redis.call('HSET', spec, 'backup:' .. id, consumer, 'backup_at:' .. id, tostring(ms))
        redis.call('HINCRBY', spec, 'backups', 1)
        return {'task', id, f.path or '', f.start or '0', f['end'] or '0',
                f.injected or '0', deliveries}
      end
    end
  end
  return nil
end

redis.register_function('wclab_speculate', speculate)
