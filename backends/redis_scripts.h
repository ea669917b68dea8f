/* SPDX-License-Identifier: MIT */
/*
 * redis_scripts.h - the Lua scripts the Redis backend runs (EVALSHA), in a
 * header of their own so that tests can run them on a real server by name,
 * e.g. to check what a script does when a request is sent twice.
 * Include it once per program (the texts are static).
 */
#ifndef LR_REDIS_SCRIPTS_H
#define LR_REDIS_SCRIPTS_H

/* KEYS[1] lease hash, KEYS[2] fence counter; ARGV[1] owner token, ARGV[2]
 * TTL ms, ARGV[3] the manager's identity, ARGV[4..] metadata field/value
 * pairs. Returns the fence (acquired, or re-acquired by the same token:
 * idempotent retries), or {holder, pttl} where holder is the holder's
 * identity, or its owner token when the hash has no identity (written by an
 * older leasering) or the lease is broken (owner ""). */
static const char acquire_lua[] =
    "local owner = redis.call('HGET', KEYS[1], 'owner')\n"
    "if owner == false then\n"
    "  local fence = redis.call('INCR', KEYS[2])\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', fence, 'identity', ARGV[3],\n"
    "             unpack(ARGV, 4))\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return fence\n"
    "elseif owner == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return tonumber(redis.call('HGET', KEYS[1], 'fence'))\n"
    "end\n"
    "local who = owner ~= '' and redis.call('HGET', KEYS[1], 'identity') or owner\n"
    "return {who, redis.call('PTTL', KEYS[1])}\n";

/* Many acquisitions in one call, the way renewals batch: KEYS[2i-1] the
 * lease hash of name i, KEYS[2i] its fence counter; ARGV[1] TTL ms (one per
 * batch: batches are grouped by TTL), ARGV[2] the manager's identity,
 * ARGV[2 + i] owner token of name i.
 * Per name, as acquire_lua without metadata: create if absent (INCR fence,
 * PEXPIRE), or re-acquire idempotently under the same token. Returns one
 * element per name: its fence, or {holder, pttl} when someone else holds it
 * (holder as in acquire_lua). Leases with metadata use acquire_lua. */
static const char acquire_batch_lua[] =
    "local call, ttl, id, r = redis.call, ARGV[1], ARGV[2], {}\n"
    "for i = 1, #KEYS / 2 do\n"
    "  local k, tok = KEYS[2 * i - 1], ARGV[i + 2]\n"
    "  local owner = call('HGET', k, 'owner')\n"
    "  if owner == false then\n"
    "    local fence = call('INCR', KEYS[2 * i])\n"
    "    call('HSET', k, 'owner', tok, 'fence', fence, 'identity', id)\n"
    "    call('PEXPIRE', k, ttl)\n"
    "    r[i] = fence\n"
    "  elseif owner == tok then\n"
    "    call('PEXPIRE', k, ttl)\n"
    "    r[i] = tonumber(call('HGET', k, 'fence'))\n"
    "  else\n"
    "    r[i] = {owner ~= '' and call('HGET', k, 'identity') or owner, call('PTTL', k)}\n"
    "  end\n"
    "end\n"
    "return r\n";

/* KEYS[i] lease hashes; ARGV[1] TTL ms (one per batch: batches are grouped by
 * TTL), ARGV[1 + i] owner token of KEYS[i]. Returns one integer per key: 1
 * renewed, 0 not ours. A single renewal is a batch of 1. */
static const char renew_lua[] =
    "local call, ttl, r = redis.call, ARGV[1], {}\n"
    "for i = 1, #KEYS do\n"
    "  local k = KEYS[i]\n"
    "  if call('HGET', k, 'owner') == ARGV[i + 1] then\n"
    "    r[i] = call('PEXPIRE', k, ttl)\n"
    "  else\n"
    "    r[i] = 0\n"
    "  end\n"
    "end\n"
    "return r\n";

/* KEYS[1] lease hash; ARGV[1] owner token. 1 deleted, 0 not ours. */
static const char release_lua[] =
    "if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* KEYS[1] lease hash; ARGV[1] break period ms. Whoever holds it: the owner
 * becomes "" (which matches no token, so the holder's next renewal is
 * refused and acquisitions conflict) until the later of the period and the
 * holder's remaining TTL -- never sooner, since the holder may act on the
 * lease until its TTL ends (so period 0 keeps the TTL). 1 broken, 0 nothing
 * was held. */
static const char break_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local period = tonumber(ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'owner', '')\n"
    "local pttl = redis.call('PTTL', KEYS[1])\n"
    "if pttl < 0 then redis.call('PEXPIRE', KEYS[1], math.max(period, 1))\n"
    "elseif pttl < period then redis.call('PEXPIRE', KEYS[1], period) end\n"
    "return 1\n";

/* KEYS[1] lease hash; ARGV[1] owner token, ARGV[2] new token. 1 changed (or
 * changed already: a retry after an answer was lost), 0 not ours. */
static const char change_lua[] =
    "local owner = redis.call('HGET', KEYS[1], 'owner')\n"
    "if owner == ARGV[1] or owner == ARGV[2] then\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* ---- session mode (redis://...?mode=session) ----
 * A manager keeps one session key per TTL, "<prefix>session:<32 hex>", whose
 * value is its TTL in ms and which expires by PEXPIRE; its lease hashes carry
 * a field "session" naming that key and no TTL of their own. The sorted set
 * "<session key>:broken" holds the owner tokens of the session's leases that
 * were broken, scored by the server's clock at the break, for one TTL. */

/* KEYS[1] the session key, KEYS[2i] the lease hash of name i, KEYS[2i+1]
 * its fence counter; ARGV[1] TTL ms, ARGV[2] the manager's identity,
 * ARGV[2 + i] owner token of name i.
 * Creates or refreshes the session first (validity counts from this send).
 * Per name: our token already there -> the same fence (idempotent retry;
 * moved to this session if it was recorded under an older one); absent, or
 * recorded under a session key that no longer exists -> taken (takeover),
 * fence = INCR; broken (owner "") or a hash without a session (a per-lease
 * mode lease) -> {holder, PTTL of the hash}; else {holder, PTTL of the
 * holder's session}, holder as in acquire_lua. Returns one element per
 * name, as acquire_batch_lua. */
static const char acquire_session_lua[] =
    "local call, ttl, id, s, r = redis.call, ARGV[1], ARGV[2], KEYS[1], {}\n"
    "call('SET', s, ttl, 'PX', ttl)\n"
    "for i = 1, (#KEYS - 1) / 2 do\n"
    "  local k, tok = KEYS[2 * i], ARGV[i + 2]\n"
    "  local h = call('HMGET', k, 'owner', 'session', 'identity')\n"
    "  local owner, hs = h[1], h[2]\n"
    "  local who = owner ~= '' and h[3] or owner\n"
    "  if owner == tok then\n"
    "    if hs ~= s then call('HSET', k, 'session', s) end\n"
    "    r[i] = tonumber(call('HGET', k, 'fence'))\n"
    "  elseif owner == false or (owner ~= '' and hs and call('EXISTS', hs) == 0) then\n"
    "    local fence = call('INCR', KEYS[2 * i + 1])\n"
    "    call('DEL', k)\n"
    "    call('HSET', k, 'owner', tok, 'fence', fence, 'session', s, 'identity', id)\n"
    "    r[i] = fence\n"
    "  elseif owner == '' or not hs then\n"
    "    r[i] = {who, call('PTTL', k)}\n"
    "  else\n"
    "    r[i] = {who, call('PTTL', hs)}\n"
    "  end\n"
    "end\n"
    "return r\n";

/* KEYS[1] the session key, KEYS[2] its broken set; ARGV[1] TTL ms, ARGV[2]
 * the most tokens to return. 0 if the session key is gone (the session is
 * lost: never re-created under this name). Else PEXPIREs it, drops breaks
 * older than one TTL, and returns {1, count, token...}: count the breaks of
 * the last TTL, then up to ARGV[2] of their owner tokens. Breaks stay for a
 * TTL and are returned by every renewal meanwhile, so a reply that is lost
 * loses no break: any renewal that could extend a broken lease reports it. */
static const char session_renew_lua[] =
    "local call, ttl = redis.call, tonumber(ARGV[1])\n"
    "if call('PEXPIRE', KEYS[1], ttl) == 0 then return 0 end\n"
    "if call('EXISTS', KEYS[2]) == 0 then return {1, 0} end\n"
    "local t = call('TIME')\n"
    "call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t[1] * 1000 + math.floor(t[2] / 1000) - ttl)\n"
    "local r = {1, call('ZCARD', KEYS[2])}\n"
    "if r[2] > 0 then\n"
    "  local m = call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)\n"
    "  for i = 1, #m do r[i + 2] = m[i] end\n"
    "end\n"
    "return r\n";

/* KEYS[1] lease hash; ARGV[1] break period ms. As break_lua, for a lease
 * held by a session: its owner token goes into the holder session's broken
 * set (whose next renewal reports it) and the owner becomes ""; the hash
 * then expires after the later of the period and the holder session's
 * remaining TTL -- the holder may act until its validity, which that TTL
 * covers, ends. A hash without a session (per-lease mode) is broken as
 * break_lua does. 1 broken, 0 nothing was held. */
static const char break_session_lua[] =
    "local call = redis.call\n"
    "local h = call('HMGET', KEYS[1], 'owner', 'session')\n"
    "local owner, s = h[1], h[2]\n"
    "if owner == false then return 0 end\n"
    "local keep = 0\n"
    "if owner ~= '' and s then\n"
    "  local sp = call('PTTL', s)\n"
    "  if sp > 0 then\n"
    "    local t, z = call('TIME'), s .. ':broken'\n"
    "    call('ZADD', z, t[1] * 1000 + math.floor(t[2] / 1000), owner)\n"
    "    local sttl = tonumber(call('GET', s)) or sp\n"
    "    if call('PTTL', z) < sttl then call('PEXPIRE', z, sttl) end\n"
    "    keep = sp\n"
    "  end\n"
    "end\n"
    "call('HSET', KEYS[1], 'owner', '')\n"
    "local want = math.max(tonumber(ARGV[1]), keep, 1)\n"
    "local pttl = call('PTTL', KEYS[1])\n"
    "if pttl < want then call('PEXPIRE', KEYS[1], want) end\n"
    "return 1\n";

/* KEYS[1] lease hash (lr_manager_inspect). Free -- no hash, or a session
 * lease whose session key is gone (the next acquisition takes it over) --
 * is {-2}; else {pttl, field, value, ...}: the remaining TTL (of the hash,
 * or in session mode of the holder's session; -1 none) followed by the
 * hash as HGETALL gives it (owner, fence, identity, session, metadata). A
 * broken lease (owner "") stays held until its hash expires. Reads a
 * session key it is not given in KEYS: only in session mode, which Redis
 * Cluster (where that would fail) never runs. */
static const char inspect_lua[] =
    "local call = redis.call\n"
    "local h = call('HGETALL', KEYS[1])\n"
    "local t, owner, s = call('PTTL', KEYS[1]), nil, nil\n"
    "for i = 1, #h, 2 do\n"
    "  if h[i] == 'owner' then owner = h[i + 1] elseif h[i] == 'session' then s = h[i + 1] end\n"
    "end\n"
    "if not owner then return {-2} end\n"
    "if s and owner ~= '' then\n"
    "  t = call('PTTL', s)\n"
    "  if t < 0 then return {-2} end\n"
    "end\n"
    "table.insert(h, 1, t)\n"
    "return h\n";

#endif
