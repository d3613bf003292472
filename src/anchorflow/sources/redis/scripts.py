"""The Lua scripts that move items between a queue and the keys a reader keeps beside it
(`keys.QueueKeys`: all in the queue's hash slot, so one script may touch them all).

Each script that changes who owns an item checks the reader's registration first: a reader
declared dead (removed from `readers` by another reader's recovery) can neither take nor commit,
so of a reader's commit and its recovery exactly one wins.
"""

from __future__ import annotations

# KEYS: readers, alive; ARGV: launch, heartbeat ms. A fenced reader cannot come back to life.
HEARTBEAT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

# KEYS: readers, alive; ARGV: launch, heartbeat ms.
REGISTER = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

# KEYS: list, processing, readers; ARGV: launch, count, items expected in processing.
# Returns nil when fenced, -1 when the processing list is not what the reader holds (a reply
# was lost: the reader abandons its chunk), else the items taken (maybe none).
TAKE = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return false end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[3]) then return -1 end
local items = redis.call('LPOP', KEYS[1], ARGV[2])
if not items then return {} end
redis.call('RPUSH', KEYS[2], unpack(items))
return items
"""

# KEYS: processing, readers, committed; ARGV: launch, chunk id, items in the chunk.
# 1 committed (or was already), 0 fenced, -1 the processing list is not the chunk.
COMMIT_LIST = """
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return 1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[3]) then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# Put a processing list back at the head of the queue in its order (LPUSH from its end) and
# delete it, in slices (a Lua call takes a bounded number of arguments).
_REQUEUE = """
local function requeue(processing, queue)
  local n = redis.call('LLEN', processing)
  local stop = n - 1
  while stop >= 0 do
    local start = math.max(0, stop - 4999)
    local items = redis.call('LRANGE', processing, start, stop)
    local reversed = {}
    for i = #items, 1, -1 do reversed[#reversed + 1] = items[i] end
    redis.call('LPUSH', queue, unpack(reversed))
    stop = start - 1
  end
  redis.call('DEL', processing)
  return n
end
"""

# KEYS: readers, alive, processing, list; ARGV: launch. A dead reader (no heartbeat) is
# unregistered and its items in hand requeued; -1 when it is alive after all.
RECOVER = (
    _REQUEUE
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('SREM', KEYS[1], ARGV[1])
return requeue(KEYS[3], KEYS[4])
"""
)

# KEYS: readers, processing, list; ARGV: launch. The reader's own items in hand back to the
# queue (its chunk was abandoned); it stays registered. A fenced reader's processing list is
# requeued too: a blocking move may have put an item there after its recovery.
REQUEUE_OWN = (
    _REQUEUE
    + """
return requeue(KEYS[2], KEYS[3])
"""
)

# KEYS: readers, alive, processing, list, committed; ARGV: launch. A graceful exit.
LEAVE = (
    _REQUEUE
    + """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[5])
return requeue(KEYS[3], KEYS[4])
"""
)

# KEYS: readers, alive, stream; ARGV: launch, group. A dead stream reader is unregistered (its
# entries stay pending in the group until another reader claims them); -1 when alive.
FENCE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""

# KEYS: stream, readers, committed; ARGV: launch, group, chunk id, delete acked (0/1), ids...
# 0 fenced; else 1 + the entries still pending for the reader after the acknowledgement
# (delivered by a read whose reply was lost: the reader reads its own pending entries again).
# A registered reader's entries are never claimed by another, so each id acknowledged here is
# one of its own.
COMMIT_STREAM = """
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then return 1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
local i = 5
while i <= #ARGV do
  local last = math.min(#ARGV, i + 4999)
  local ids = {unpack(ARGV, i, last)}
  redis.call('XACK', KEYS[1], ARGV[2], unpack(ids))
  if ARGV[4] == '1' then redis.call('XDEL', KEYS[1], unpack(ids)) end
  i = last + 1
end
redis.call('SADD', KEYS[3], ARGV[3])
local pending = 0
local summary = redis.call('XPENDING', KEYS[1], ARGV[2])
if summary[4] then
  for _, pair in ipairs(summary[4]) do
    if pair[1] == ARGV[1] then pending = tonumber(pair[2]) end
  end
end
return 1 + pending
"""

# KEYS: stream, readers; ARGV: group, dead consumer, claimer, min idle ms, count. Claim the
# idle pending entries of a consumer that is not a registered reader (never a live one's).
CLAIM = """
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return {} end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], '-', '+', ARGV[5],
                           ARGV[2])
if #pending == 0 then return {} end
local ids = {}
for i, entry in ipairs(pending) do ids[i] = entry[1] end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], ARGV[4], unpack(ids))
"""

# KEYS: stream, readers; ARGV: group, consumer. Delete a consumer that is not registered and
# holds no pending entry (deleting one with pending entries would drop them).
DROP_CONSUMER = """
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 0 end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
