import type { CreditRule } from '../../domain/policy';
import type { LimitCheck, LimitResult, Limiter } from '../../ports/limiter';
import { toStoreError, type RedisClient } from '../redis/redis-client';
import { evalScript, luaScript } from '../redis/lua-script';
import {
  checkCreditCount,
  checkCreditRule,
  decodeTat,
  gcraState,
  periodStart,
  prepareCheck,
  toMs,
  type PreparedCheck,
} from './gcra';

/*
 * Rate limits and credits shared by every sidecar, in Redis. The arithmetic is gcra.ts's (read its
 * header for the exact condition and bound); the CHECK script below repeats it operation for
 * operation on integers (exact in Lua's doubles as in JS numbers), so RedisLimiter and
 * MemoryLimiter decide alike, and test/integration/limiter.test.ts compares them on random runs.
 *
 * Key layout (T = `{<prefix>l:<keyId>}`, e.g. `{kwl:key_01J...}`):
 *
 *   T:rl   HASH   field <limit name> = the limit's TAT as `ms frac den` (TAT = ms + frac/den ms).
 *                 Expires (PEXPIRE, only ever lengthened) when the slowest of its limits is full
 *                 again plus `expiryMarginMs`: a key idle that long has no rate-limit state at all,
 *                 which means exactly "every limit full". One hash rather than a key per limit, so
 *                 that forget() can delete the state without knowing the limit names.
 *   T:cr   HASH   r = credits remaining (integer ≥ 0), s = when r was last set (init, refill,
 *                 setCredits; ms). No expiry.
 *
 * Both keys of one keyward key share the hash tag T, so each script touches one slot and is legal
 * in Redis Cluster; different keyward keys spread over the cluster (unlike the `{kw}` records).
 *
 * One round trip per check: the CHECK script reads every limit and the credits, decides, and
 * writes only if everything passes (all new TATs, and the credits minus the cost); a refused
 * request writes nothing at all, not even the lazy initialisation or refill of the credits.
 *
 * Time is the caller's (`now`, whole ms), not Redis TIME: fake clocks work in tests, and sidecars
 * agree as long as their clocks do. A sidecar whose clock runs s ms ahead of the others is more
 * permissive by about s ms worth of units (it sees TATs s ms sooner) and refills credits s ms
 * before the UTC boundary; one running behind is stricter by as much. Keep clocks NTP-synced.
 *
 * Errors: unreachable Redis → StoreUnavailableError (toStoreError); a refused command (e.g. a
 * corrupted state, WRONGTYPE) → a plain Error.
 */

export interface RedisLimiterOptions {
  /** Owned: close() quits it. */
  redis: RedisClient;
  /** Keys are tagged `{<keyPrefix>l:<keyId>}`. Default `kw`. */
  keyPrefix?: string;
  /**
   * Rate-limit state outlives the moment it is full again by this much (ms), so that a sidecar
   * whose clock runs behind still sees it. Default 60,000.
   */
  expiryMarginMs?: number;
}

const script = luaScript;

/**
 * KEYS: T:rl, T:cr. ARGV: now, cost, n (rules), expiry margin; per rule i: name, num, den, cap
 * (at 1 + 4i .. 4 + 4i); then has-credits ('1'/'0'), initial, refill period start ('' without
 * refill), refill amount. Reply: {1 allowed / 0 refused, 0 or the index of the first refusing
 * rule or -1 for the credits, credits remaining (after the request; -1 without credits), then per
 * rule its TAT after the request ('' when none)}. Mirrors gcra.ts's gcraStep and decide.
 */
const CHECK = script(`
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local denied = 0
local tats, nextTats = {}, {}
if n > 0 then
  local names = {}
  for i = 1, n do names[i] = ARGV[1 + 4 * i] end
  local cur = redis.call('HMGET', KEYS[1], unpack(names))
  for i = 1, n do
    local num, den, cap = tonumber(ARGV[2 + 4 * i]), tonumber(ARGV[3 + 4 * i]), tonumber(ARGV[4 + 4 * i])
    local ms, frac = now, 0
    tats[i] = ''
    if cur[i] then
      local m, f, d = string.match(cur[i], '^(%-?%d+) (%d+) (%d+)$')
      if not m then return redis.error_reply('ERR keyward: invalid rate-limit state in ' .. KEYS[1]) end
      m, f, d = tonumber(m), tonumber(f), tonumber(d)
      if d ~= den then
        if f > 0 then m = m + 1 end
        f = 0
      end
      if m >= now then ms, frac = m, f end
      tats[i] = cur[i]
    end
    if denied == 0 then
      local ok = false
      if cost * num <= cap then
        local a = frac + cost * num
        local nf = math.fmod(a, den)
        local nm = ms + (a - nf) / den
        if (nm - now) * den + nf <= cap then
          ok = true
          nextTats[i] = {nm, nf}
        end
      end
      if not ok then denied = i end
    end
  end
end
local c0 = 4 + 4 * n
local hasCredits = ARGV[c0 + 1] == '1'
local r, setAt = -1, now
if hasCredits then
  local v = redis.call('HMGET', KEYS[2], 'r', 's')
  if not v[1] then
    r = tonumber(ARGV[c0 + 2])
  else
    r, setAt = tonumber(v[1]), tonumber(v[2]) or 0
    if ARGV[c0 + 3] ~= '' and setAt < tonumber(ARGV[c0 + 3]) then r, setAt = tonumber(ARGV[c0 + 4]), now end
  end
  if denied == 0 and r < cost then denied = -1 end
end
if denied ~= 0 then
  return {0, denied, r, unpack(tats)}
end
if n > 0 then
  local fields, ttl = {}, 0
  for i = 1, n do
    local t = nextTats[i]
    tats[i] = string.format('%.0f %.0f %s', t[1], t[2], ARGV[3 + 4 * i])
    fields[2 * i - 1] = ARGV[1 + 4 * i]
    fields[2 * i] = tats[i]
    local full = t[1] - now
    if t[2] > 0 then full = full + 1 end
    if full > ttl then ttl = full end
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  ttl = ttl + margin
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
if hasCredits then
  r = r - cost
  redis.call('HSET', KEYS[2], 'r', string.format('%.0f', r), 's', string.format('%.0f', setAt))
end
return {1, 0, r, unpack(tats)}`);

/**
 * KEYS: T:cr. ARGV: now, initial, refill period start ('' without refill), refill amount.
 * Initialises or refills (and stores that) like CHECK would; returns the credits remaining.
 */
const CREDITS = script(`
local v = redis.call('HMGET', KEYS[1], 'r', 's')
if not v[1] then
  redis.call('HSET', KEYS[1], 'r', ARGV[2], 's', ARGV[1])
  return tonumber(ARGV[2])
end
if ARGV[3] ~= '' and (tonumber(v[2]) or 0) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'r', ARGV[4], 's', ARGV[1])
  return tonumber(ARGV[4])
end
return tonumber(v[1])`);

export class RedisLimiter implements Limiter {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly margin: number;
  private closed = false;

  constructor(opts: RedisLimiterOptions) {
    const prefix = opts.keyPrefix ?? 'kw';
    if (!/^[^{}\s]+$/.test(prefix)) {
      throw new RangeError(`invalid keyPrefix ${JSON.stringify(prefix)}: no braces or spaces`);
    }
    if ((opts.redis.options as { keyPrefix?: string }).keyPrefix) {
      // scripts name their keys themselves; an ioredis prefix would be applied inconsistently
      throw new RangeError('the ioredis keyPrefix option is not supported; use the keyPrefix of RedisLimiter');
    }
    const margin = opts.expiryMarginMs ?? 60_000;
    if (!Number.isSafeInteger(margin) || margin < 0) {
      throw new RangeError(`expiryMarginMs must be a non-negative integer, got ${margin}`);
    }
    this.redis = opts.redis;
    this.prefix = prefix;
    this.margin = margin;
  }

  /** The two Redis keys of a keyward key (exposed for tests and operations). */
  keysOf(keyId: string): { rates: string; credits: string } {
    if (typeof keyId !== 'string' || keyId === '') throw new RangeError('keyId must be a non-empty string');
    const tag = `{${this.prefix}l:${keyId}}`;
    return { rates: `${tag}:rl`, credits: `${tag}:cr` };
  }

  async check(c: LimitCheck): Promise<LimitResult> {
    const p = prepareCheck(c);
    if (p.rules.length === 0 && !p.credits) return { allowed: true, rateLimits: [] };
    const { rates, credits } = this.keysOf(p.keyId);
    const args = [String(p.now), String(p.cost), String(p.rules.length), String(this.margin)];
    for (const r of p.rules) args.push(r.name, String(r.num), String(r.den), String(r.cap));
    args.push(...creditArgs(p.credits, p.now));
    const reply = await this.run('check', () => evalScript(this.redis, CHECK, [rates, credits], args));
    return toResult(p, reply);
  }

  async credits(keyId: string, rule: CreditRule | undefined, now: number): Promise<number | undefined> {
    if (!rule) return undefined;
    checkCreditRule(rule);
    const t = toMs(now);
    const [, initial, start, amount] = creditArgs(rule, t);
    const reply = await this.run('credits', () =>
      evalScript(this.redis, CREDITS, [this.keysOf(keyId).credits], [String(t), initial, start, amount]),
    );
    return Number(reply);
  }

  async setCredits(keyId: string, remaining: number, now: number): Promise<void> {
    checkCreditCount(remaining);
    const key = this.keysOf(keyId).credits;
    await this.run('setCredits', () => this.redis.hset(key, 'r', String(remaining), 's', String(toMs(now))));
  }

  async forget(keyId: string): Promise<void> {
    const { rates, credits } = this.keysOf(keyId);
    await this.run('forget', () => this.redis.del(rates, credits));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect(); // not connected: nothing to say goodbye to
    }
  }


  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(op, err);
    }
  }
}

/** has-credits, initial, refill period start ('' without refill), refill amount. */
function creditArgs(rule: CreditRule | undefined, now: number): [string, string, string, string] {
  if (!rule) return ['0', '0', '', '0'];
  const start = rule.refill ? String(periodStart(now, rule.refill.period)) : '';
  return ['1', String(rule.initial), start, String(rule.refill?.amount ?? 0)];
}

function toResult(p: PreparedCheck, reply: unknown): LimitResult {
  if (!Array.isArray(reply) || reply.length !== 3 + p.rules.length) {
    throw new Error(`redis check script: unexpected reply ${JSON.stringify(reply)}`);
  }
  const [allowed, denied, credits, ...tats] = reply as [number, number, number, ...string[]];
  const rateLimits = p.rules.map((r, i) => gcraState(r, tats[i] === '' ? undefined : decodeTat(String(tats[i])), p.now));
  const creditsRemaining = p.credits ? { creditsRemaining: Number(credits) } : {};
  if (Number(allowed) === 1) return { allowed: true, rateLimits, ...creditsRemaining };
  const d = Number(denied);
  return {
    allowed: false,
    denied: d === -1 ? { kind: 'credits' } : { kind: 'rate_limit', name: p.rules[d - 1].name },
    rateLimits,
    ...creditsRemaining,
  };
}
