//! The Lua scripts: each runs atomically on the server.

use std::sync::LazyLock;

use redis::Script;

/// Applies a batch and moves the checkpoint, atomically.
///
/// KEYS: documents hash, positions hash, checkpoint. ARGV: the checkpoint, then per
/// change: `p` (put) or `d` (delete), id, position, value (empty for a delete).
/// Every check is made before the first write, so an error writes nothing; the
/// shebang makes the server refuse the script up front when it is out of memory.
/// Returns the number of changes written (the others were already applied).
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
local written = 0
for i = 2, #ARGV, 4 do
  local id, p = ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', KEYS[2], id)
  if (not current) or current < p then
    if ARGV[i] == 'p' then
      redis.call('HSET', KEYS[1], id, ARGV[i + 3])
    else
      redis.call('HDEL', KEYS[1], id)
    end
    redis.call('HSET', KEYS[2], id, p)
    written = written + 1
  end
end
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
