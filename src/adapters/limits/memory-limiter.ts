import { compileCredits } from '../../domain/limit-rules';
import type { CreditRule } from '../../domain/policy';
import type { LimitCheck, LimitResult, Limiter } from '../../ports/limiter';
import {
  checkCreditCount,
  decide,
  effectiveCredits,
  fullAgainAt,
  requestTime,
  toMs,
  type CreditState,
  type Tat,
} from './gcra';

export interface MemoryLimiterOptions {
  /**
   * Most keys whose rate-limit state is kept, and (separately) most keys whose credits are kept;
   * the least recently used go first. Default 1,000,000. Evicting rate-limit state makes that key
   * idle again; evicting credits makes the key start again from its rule's `initial`.
   */
  maxKeys?: number;
}

interface RateEntry {
  readonly tats: Map<string, Tat>;
  /** Every stored limit is full again from then on: the entry is as good as absent. */
  fullAt: number;
}

/**
 * A least-recently-used map on a Map's insertion order: no up-front allocation (lru-cache
 * preallocates arrays of `max` slots: ~300 ms and tens of MB for a million).
 */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get size(): number {
    return this.map.size;
  }
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

/**
 * The limiter of a single sidecar without shared state (development, tests, one-instance
 * deployments): the same decisions as RedisLimiter (gcra.ts), kept in this process.
 * Idle rate-limit entries are dropped when next touched; both maps are LRU-bounded.
 */
export class MemoryLimiter implements Limiter {
  private readonly rates: Lru<RateEntry>;
  private readonly creditsByKey: Lru<CreditState>;

  constructor(opts: MemoryLimiterOptions = {}) {
    const max = opts.maxKeys ?? 1_000_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxKeys must be a positive integer, got ${max}`);
    this.rates = new Lru(max);
    this.creditsByKey = new Lru(max);
  }

  /** Keys with rate-limit state / with credits held right now (for tests and metrics). */
  get size(): { rates: number; credits: number } {
    return { rates: this.rates.size, credits: this.creditsByKey.size };
  }

  async check(c: LimitCheck): Promise<LimitResult> {
    const now = requestTime(c);
    const { keyId, limits } = c;
    const rules = limits.rates;
    let entry = rules.length > 0 ? this.rates.get(keyId) : undefined;
    if (entry && entry.fullAt <= now) {
      this.rates.delete(keyId);
      entry = undefined;
    }
    const tats = rules.map((r) => entry?.tats.get(r.name));
    const stored = limits.credits ? this.creditsByKey.get(keyId) : undefined;
    const { result, write } = decide(limits, c.cost, now, tats, stored);
    if (write) {
      if (write.tats.length > 0) {
        const e = entry ?? { tats: new Map<string, Tat>(), fullAt: -Infinity };
        rules.forEach((r, i) => e.tats.set(r.name, write.tats[i]));
        e.fullAt = Math.max(e.fullAt, fullAgainAt(write.tats));
        if (!entry) this.rates.set(keyId, e);
      }
      if (write.credits) this.creditsByKey.set(keyId, write.credits);
    }
    return result;
  }

  async credits(keyId: string, rule: CreditRule | undefined, now: number): Promise<number | undefined> {
    if (!rule) return undefined;
    const valid = compileCredits(rule);
    const stored = this.creditsByKey.get(keyId);
    const current = effectiveCredits(stored, valid, toMs(now));
    if (current !== stored) this.creditsByKey.set(keyId, current);
    return current.remaining;
  }

  async setCredits(keyId: string, remaining: number, now: number): Promise<void> {
    checkCreditCount(remaining);
    this.creditsByKey.set(keyId, { remaining, setAt: toMs(now) });
  }

  async forget(keyId: string): Promise<void> {
    this.rates.delete(keyId);
    this.creditsByKey.delete(keyId);
  }

  async close(): Promise<void> {
    this.rates.clear();
    this.creditsByKey.clear();
  }
}
