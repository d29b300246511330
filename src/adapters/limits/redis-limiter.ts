import { Command } from 'ioredis';
import { compileCredits, type CompiledCredits, type CompiledLimits } from '../../domain/limit-rules';
import type { CreditRule } from '../../domain/policy';
import type { LimitCheck, LimitResult, Limiter, RateLimitState } from '../../ports/limiter';
import { toStoreError, type RedisClient } from '../redis/redis-client';
import { luaScript, type LuaScript } from '../redis/lua-script';
import { turnBatcherFor, type TurnBatcher } from '../redis/turn-batcher';
import { checkCreditCount, gcraState, periodStart, requestTime, toMs } from './gcra';

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
  /**
   * Write the commands of one event-loop turn to Redis in one system call (cork the socket
   * until the turn ends, `TurnBatcher`) rather than one each. Default true; standalone Redis only.
   */
  batchWrites?: boolean;
}

const script = luaScript;

/**
 * KEYS: T:rl, T:cr. ARGV: now, cost, n (rules), expiry margin; per rule i: name, num, den, cap
 * (at 1 + 4i .. 4 + 4i); then has-credits ('1'/'0'), initial, refill period start ('' without
 * refill), refill amount. Reply, integers only (no text for the client to parse): {1 allowed / 0
 * refused, 0 or the index of the first refusing rule or -1 for the credits, credits remaining
 * (after the request; -1 without credits), then per rule its TAT after the request as ms, frac,
 * den (den 0: none)}. Every value is an integer below 2^53, exact through Redis's integer reply.
 * Mirrors gcra.ts's gcraStep and decide.
 */
const CHECK = script(`
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local denied = 0
local reply, nextTats = {0, 0, -1}, {}
if n > 0 then
  local names = {}
  for i = 1, n do names[i] = ARGV[1 + 4 * i] end
  local cur = redis.call('HMGET', KEYS[1], unpack(names))
  for i = 1, n do
    local num, den, cap = tonumber(ARGV[2 + 4 * i]), tonumber(ARGV[3 + 4 * i]), tonumber(ARGV[4 + 4 * i])
    local ms, frac = now, 0
    reply[1 + 3 * i], reply[2 + 3 * i], reply[3 + 3 * i] = 0, 0, 0
    if cur[i] then
      local m, f, d = string.match(cur[i], '^(%-?%d+) (%d+) (%d+)$')
      if not m then return redis.error_reply('ERR keyward: invalid rate-limit state in ' .. KEYS[1]) end
      m, f, d = tonumber(m), tonumber(f), tonumber(d)
      if d < 1 or f >= d then return redis.error_reply('ERR keyward: invalid rate-limit state in ' .. KEYS[1]) end
      reply[1 + 3 * i], reply[2 + 3 * i], reply[3 + 3 * i] = m, f, d
      if d ~= den then
        if f > 0 then m = m + 1 end
        f = 0
      end
      if m >= now then ms, frac = m, f end
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
  reply[2], reply[3] = denied, r
  return reply
end
if n > 0 then
  local fields, ttl = {}, 0
  for i = 1, n do
    local t = nextTats[i]
    fields[2 * i - 1] = ARGV[1 + 4 * i]
    fields[2 * i] = string.format('%.0f %.0f %s', t[1], t[2], ARGV[3 + 4 * i])
    reply[1 + 3 * i], reply[2 + 3 * i], reply[3 + 3 * i] = t[1], t[2], tonumber(ARGV[3 + 4 * i])
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
reply[1], reply[3] = 1, r
return reply`);

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
  private readonly margin: string;
  /** Undefined when batchWrites is off. */
  private readonly batcher: TurnBatcher | undefined;
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
    this.margin = String(margin);
    this.batcher = (opts.batchWrites ?? true) ? turnBatcherFor(opts.redis) : undefined;
  }

  /** The two Redis keys of a keyward key (exposed for tests and operations). */
  keysOf(keyId: string): { rates: string; credits: string } {
    if (typeof keyId !== 'string' || keyId === '') throw new RangeError('keyId must be a non-empty string');
    const tag = `{${this.prefix}l:${keyId}}`;
    return { rates: `${tag}:rl`, credits: `${tag}:cr` };
  }

  /**
   * The hot path (every validation of a key with limits): one EVALSHA sent as a prepared
   * ioredis Command, an all-integer reply, and no async wrappers in between. The rules come
   * compiled, with their arguments as text: only the key, time and cost are formatted here.
   */
  check(c: LimitCheck): Promise<LimitResult> {
    let now: number;
    try {
      now = requestTime(c);
    } catch (err) {
      return Promise.reject(err);
    }
    const limits = c.limits;
    const { rates, credits } = limits;
    if (rates.length === 0 && !credits) return Promise.resolve({ allowed: true, rateLimits: [] });
    const tag = `{${this.prefix}l:${c.keyId}}`;
    const args = [CHECK.sha, '2', `${tag}:rl`, `${tag}:cr`, String(now), String(c.cost), String(rates.length), this.margin];
    for (const { text } of rates) args.push(text[0], text[1], text[2], text[3]);
    if (credits) args.push('1', credits.initialText, refillStart(credits, now), credits.refillAmountText);
    else args.push('0', '0', '', '0');
    return this.evalsha(CHECK, args).then(
      (reply) => toResult(limits, now, reply),
      (err: unknown) => {
        throw toStoreError('check', err);
      },
    );
  }

  async credits(keyId: string, rule: CreditRule | undefined, now: number): Promise<number | undefined> {
    if (!rule) return undefined;
    const c = compileCredits(rule);
    const t = toMs(now);
    const args = [CREDITS.sha, '1', this.keysOf(keyId).credits, String(t), c.initialText, refillStart(c, t), c.refillAmountText];
    const reply = await this.run('credits', () => this.evalsha(CREDITS, args));
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

  /**
   * EVALSHA with `args` = [sha, numkeys, ...keys, ...argv], falling back to EVAL (which also
   * loads the script) when the server does not know it (new or restarted). Built as a Command
   * and handed to sendCommand directly: the generated `evalsha(...)` method costs an options
   * object, a rest array and the auto-pipelining test on every call.
   */
  private evalsha(s: LuaScript, args: string[]): Promise<unknown> {
    this.batcher?.corkUntilTurnEnds();
    const sent = this.redis.sendCommand(new Command('evalsha', args, { replyEncoding: null })) as Promise<unknown>;
    return sent.catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      const retry = args.slice();
      retry[0] = s.lua;
      return this.redis.sendCommand(new Command('eval', retry, { replyEncoding: null })) as Promise<unknown>;
    });
  }

  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(op, err);
    }
  }
}

/** The refill period start argument of the scripts: '' without refill. */
function refillStart(credits: CompiledCredits, now: number): string {
  return credits.refill ? String(periodStart(now, credits.refill.period)) : '';
}

/** Maps CHECK's integer reply (see its comment) to the result, as gcra.ts's decide makes it. */
function toResult(limits: CompiledLimits, now: number, reply: unknown): LimitResult {
  const rules = limits.rates;
  const n = rules.length;
  if (!Array.isArray(reply) || reply.length !== 3 + 3 * n || !reply.every(Number.isSafeInteger)) {
    throw new Error(`redis check script: unexpected reply ${JSON.stringify(reply)}`);
  }
  const r = reply as number[];
  const rateLimits = new Array<RateLimitState>(n);
  for (let i = 0; i < n; i++) {
    const den = r[5 + 3 * i];
    rateLimits[i] = gcraState(rules[i], den === 0 ? undefined : { ms: r[3 + 3 * i], frac: r[4 + 3 * i], den }, now);
  }
  if (r[0] === 1) return limits.credits ? { allowed: true, rateLimits, creditsRemaining: r[2] } : { allowed: true, rateLimits };
  const denied = r[1];
  return {
    allowed: false,
    denied: denied === -1 ? { kind: 'credits' } : { kind: 'rate_limit', name: rules[denied - 1].name },
    rateLimits,
    ...(limits.credits && { creditsRemaining: r[2] }),
  };
}
