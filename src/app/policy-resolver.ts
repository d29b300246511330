import type { Clock } from '../domain/clock';
import { StoreUnavailableError } from '../domain/errors';
import type { KeyRecord } from '../domain/key-record';
import { compilePolicy, type CompiledPolicy } from '../domain/policy-evaluation';
import { withSpan } from '../observability/span-helpers';
import type { PolicyStore } from '../ports/policy-store';

export interface PolicyResolverOptions {
  store: PolicyStore;
  clock: Clock;
  /** How long a policy or a service's default is used before the store is asked again. */
  ttlMs: number;
  /** While the store is unreachable, how long past the TTL a known policy is still used. */
  maxStalenessMs: number;
}

interface Cached<T> {
  readonly value: T;
  readonly freshUntil: number;
  readonly usableUntil: number;
}

/** null: the key names a policy that does not exist (validation refuses it). */
export type Resolved = CompiledPolicy | undefined | null;

/**
 * Finds a key's effective policy: its own, else its service's default, compiled once per
 * policy version. Answers synchronously from memory when fresh (the hot path); change events
 * invalidate entries on every sidecar, and the TTL is the safety net.
 */
export class PolicyResolver {
  private readonly policies = new Map<string, Cached<CompiledPolicy | null>>();
  private readonly defaults = new Map<string, Cached<string | undefined>>();
  /**
   * Bumped by every invalidation. A read that started before one must not put what it read back
   * in the cache (it may be the old policy); it still answers its own caller.
   */
  private generation = 0;
  private readonly opts: PolicyResolverOptions;

  constructor(opts: PolicyResolverOptions) {
    this.opts = opts;
  }

  resolve(record: Pick<KeyRecord, 'policyId' | 'service'>): Resolved | Promise<Resolved> {
    const now = this.opts.clock.now();
    if (record.policyId !== undefined) return this.policy(record.policyId, now);
    const d = this.defaults.get(record.service);
    if (d !== undefined && now < d.freshUntil) return d.value === undefined ? undefined : this.policy(d.value, now);
    return this.refresh(this.defaults, record.service, d, now, () => this.opts.store.getServiceDefault(record.service)).then((id) =>
      id === undefined ? undefined : this.policy(id, now),
    );
  }

  invalidatePolicy(id: string): void {
    this.generation++;
    this.policies.delete(id);
  }

  /** Drops the service's default and every cached policy of the service (a policy changed). */
  invalidateService(service: string): void {
    this.generation++;
    this.defaults.delete(service);
    for (const [id, cached] of this.policies) {
      if (cached.value === null || cached.value.policy.service === service) this.policies.delete(id);
    }
  }

  private policy(id: string, now: number): Resolved | Promise<Resolved> {
    const p = this.policies.get(id);
    if (p !== undefined && now < p.freshUntil) return p.value;
    return this.refresh(this.policies, id, p, now, async () => {
      const policy = await this.opts.store.getPolicy(id);
      return policy === undefined ? null : compilePolicy(policy);
    });
  }

  private async refresh<T>(map: Map<string, Cached<T>>, key: string, previous: Cached<T> | undefined, now: number, load: () => Promise<T>): Promise<T> {
    const generation = this.generation;
    try {
      const value = await withSpan('keyward.policy.read', undefined, load);
      if (generation === this.generation) {
        map.set(key, { value, freshUntil: now + this.opts.ttlMs, usableUntil: now + this.opts.ttlMs + this.opts.maxStalenessMs });
      }
      return value;
    } catch (err) {
      if (previous !== undefined && this.opts.clock.now() < previous.usableUntil) return previous.value;
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError('policy store unreachable', { cause: err });
    }
  }
}
