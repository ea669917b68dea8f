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
 * TTL ms, ARGV[3..] metadata field/value pairs. Returns the fence (acquired,
 * or re-acquired by the same token: idempotent retries), or {holder, pttl}. */
static const char acquire_lua[] =
    "local owner = redis.call('HGET', KEYS[1], 'owner')\n"
    "if owner == false then\n"
    "  local fence = redis.call('INCR', KEYS[2])\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', fence, unpack(ARGV, 3))\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return fence\n"
    "elseif owner == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return tonumber(redis.call('HGET', KEYS[1], 'fence'))\n"
    "end\n"
    "return {owner, redis.call('PTTL', KEYS[1])}\n";

/* Many acquisitions in one call, the way renewals batch: KEYS[2i-1] the
 * lease hash of name i, KEYS[2i] its fence counter; ARGV[1] TTL ms (one per
 * batch: batches are grouped by TTL), ARGV[1 + i] owner token of name i.
 * Per name, as acquire_lua without metadata: create if absent (INCR fence,
 * PEXPIRE), or re-acquire idempotently under the same token. Returns one
 * element per name: its fence, or {holder, pttl} when someone else holds it.
 * Leases with metadata use acquire_lua. */
static const char acquire_batch_lua[] =
    "local call, ttl, r = redis.call, ARGV[1], {}\n"
    "for i = 1, #KEYS / 2 do\n"
    "  local k, tok = KEYS[2 * i - 1], ARGV[i + 1]\n"
    "  local owner = call('HGET', k, 'owner')\n"
    "  if owner == false then\n"
    "    local fence = call('INCR', KEYS[2 * i])\n"
    "    call('HSET', k, 'owner', tok, 'fence', fence)\n"
    "    call('PEXPIRE', k, ttl)\n"
    "    r[i] = fence\n"
    "  elseif owner == tok then\n"
    "    call('PEXPIRE', k, ttl)\n"
    "    r[i] = tonumber(call('HGET', k, 'fence'))\n"
    "  else\n"
    "    r[i] = {owner, call('PTTL', k)}\n"
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

#endif
