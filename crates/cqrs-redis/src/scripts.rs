//! The Lua scripts: each runs atomically on the server.

use std::sync::LazyLock;

use redis::Script;

/// Applies a batch and moves the checkpoint, atomically.
///
/// KEYS: documents hash, positions hash, checkpoint. ARGV: the checkpoint, then per
/// change: `p` (put) or `d` (delete), id, position, value (empty for a delete).
/// Every check is made before the first write, so an error writes nothing; the
/// shebang makes the server refuse the script up front when it is out of memory.
/// The positions are read with a few `HMGET`s and the writes made with a few variadic
/// `HSET`/`HDEL`s (chunks of 1,000, within Lua's `unpack` limit), not a call per
/// change. Returns the number of documents written (the others were already applied).
pub(crate) static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
for i = 1, 2 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'hash' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t .. ', not a hash')
  end
end
local t = redis.call('TYPE', KEYS[3])['ok']
if t ~= 'string' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[3] .. ' holds a ' .. t .. ', not a string')
end
if (#ARGV - 1) % 4 ~= 0 then
  return redis.error_reply('ERR malformed batch')
end
local n = (#ARGV - 1) / 4
local CHUNK = 1000
-- The stored positions of the changed documents, a few HMGETs for the whole batch.
local stored = {}
for from = 1, n, CHUNK do
  local ids = {}
  for j = from, math.min(from + CHUNK - 1, n) do
    ids[#ids + 1] = ARGV[4 * j - 1]
  end
  local positions = redis.call('HMGET', KEYS[2], unpack(ids))
  for k = 1, #ids do
    if positions[k] then stored[ids[k]] = positions[k] end
  end
end
-- The winning change per document: newer than what is stored (and than an earlier
-- change of the same document in this batch).
local puts, dels, newest = {}, {}, {}
for j = 1, n do
  local op, id, p = ARGV[4 * j - 2], ARGV[4 * j - 1], ARGV[4 * j]
  local current = newest[id] or stored[id]
  if (not current) or current < p then
    newest[id] = p
    if op == 'p' then puts[id] = ARGV[4 * j + 1]; dels[id] = nil
    else dels[id] = true; puts[id] = nil end
  end
end
-- The writes: a few variadic HSET / HDEL calls.
local function flush(key, cmd, args)
  if #args > 0 then redis.call(cmd, key, unpack(args)) end
end
local docs, gone, positions, written = {}, {}, {}, 0
for id, p in pairs(newest) do
  written = written + 1
  positions[#positions + 1] = id
  positions[#positions + 1] = p
  if puts[id] then
    docs[#docs + 1] = id
    docs[#docs + 1] = puts[id]
  else
    gone[#gone + 1] = id
  end
  if #docs >= 2 * CHUNK then flush(KEYS[1], 'HSET', docs); docs = {} end
  if #gone >= CHUNK then flush(KEYS[1], 'HDEL', gone); gone = {} end
  if #positions >= 2 * CHUNK then flush(KEYS[2], 'HSET', positions); positions = {} end
end
flush(KEYS[1], 'HSET', docs)
flush(KEYS[1], 'HDEL', gone)
flush(KEYS[2], 'HSET', positions)
local checkpoint = redis.call('GET', KEYS[3])
if (not checkpoint) or checkpoint < ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[1])
end
return written
",
    )
});

/// Takes or renews a lease. KEYS: the lease. ARGV: holder, time to live (ms).
/// Returns 1 if the holder has it now.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Releases a lease if the holder has it. KEYS: the lease. ARGV: holder.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Sets cache entries unless they hold a later position. KEYS: the entries. ARGV: time
/// to live (ms), then per key: position (20 digits), entry (which starts with it).
/// Returns how many were set.
pub(crate) static CACHE_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"#!lua
local set = 0
for i = 1, #KEYS do
  local p, entry = ARGV[2 * i], ARGV[2 * i + 1]
  local current = redis.call('GET', KEYS[i])
  if (not current) or string.sub(current, 1, 20) <= p then
    redis.call('SET', KEYS[i], entry, 'PX', ARGV[1])
    set = set + 1
  end
end
return set
",
    )
});
