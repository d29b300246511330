import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { ValidationCache } from '../../../src/adapters/cache/validation-cache';
import { MemoryLimiter } from '../../../src/adapters/limits/memory-limiter';
import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { KeyValidator } from '../../../src/app/key-validator';
import { PolicyResolver } from '../../../src/app/policy-resolver';
import { StoreValidationSource } from '../../../src/app/store-validation-source';
import { systemClock } from '../../../src/domain/clock';
import { generateKey } from '../../../src/domain/key-format';
import { hashKey } from '../../../src/domain/key-hash';
import { trackAsyncWork } from '../../../src/observability/span-helpers';
import type { Decision } from '../../../src/domain/validation';
import { seededBytes } from '../helpers/bytes';
import { makePolicy, makeRecord } from '../helpers/records';
import { hexOf, parentOf, startTestTracing } from './tracing-harness';

/*
 * keyward's context manager follows async work only while it is tracked. A validation that misses
 * the cache goes through several reads, each answered on a later turn of the event loop (a Redis
 * round trip), with the manager free to switch off between them: every step must still hang below
 * the call's span.
 */

const POLICY_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';
/** Answers on a later turn (a timer), as a network round trip does. */
const later = <T>(value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), 2));

async function setup(source: 'cache' | 'store') {
  const keys = new MemoryKeyStore();
  const policies = new MemoryPolicyStore();
  await policies.createPolicy(makePolicy({ id: POLICY_ID, service: 'orders', rateLimits: [{ name: 'rps', limit: 10, periodMs: 1000, burst: 2 }] }), {
    serviceDefault: false,
  });
  const slowPolicies = Object.assign(Object.create(policies) as MemoryPolicyStore, {
    getPolicy: async (id: string) => later(await policies.getPolicy(id)),
  });
  const load = async (h: string) => later(await keys.getByHash(h));
  const slowKeys = Object.assign(Object.create(keys) as MemoryKeyStore, { getByHash: load });
  const validator = new KeyValidator({
    source:
      source === 'store'
        ? new StoreValidationSource(slowKeys)
        : new ValidationCache({ load, clock: systemClock, maxEntries: 10, ttlMs: 60_000, negativeTtlMs: 1000, maxStalenessMs: 0 }),
    clock: systemClock,
    // policies go stale after 1 ms: a second call finds its key cached and reads the policy again
    policies: new PolicyResolver({ store: slowPolicies, clock: systemClock, ttlMs: 1, maxStalenessMs: 0 }),
    limiter: new MemoryLimiter(),
  });
  const secret = generateKey('sk', seededBytes(5));
  await keys.create(makeRecord({ id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR01', hash: hashKey(secret), service: 'orders', scopes: ['orders:*'], policyId: POLICY_ID }));
  return { validator, secret };
}

describe.each(['cache', 'store'] as const)('a validation that reads the store and its policy (%s), traced with the sync-first context manager', (source) => {
  let t: ReturnType<typeof startTestTracing>;
  beforeEach(() => {
    t = startTestTracing({ syncFirst: true });
  });
  afterEach(async () => {
    await t.stop();
  });

  /** One ValidateKey as grpc-server-spans.ts runs a sync-first handler: untracked, tracked once it goes async. */
  const call = async (validator: KeyValidator, secret: string) => {
    const root = trace.getTracer('test').startSpan('call');
    let release: (() => void) | undefined;
    const result = context.with(trace.setSpan(ROOT_CONTEXT, root), () => {
      const r = validator.validate(KeyValidator.checkRequest({ key: secret, service: 'orders', requiredScopes: [], clientIp: '', cost: 1 }));
      if (r instanceof Promise) release = trackAsyncWork();
      return r;
    });
    expect(result).toBeInstanceOf(Promise);
    const decision: Decision = await result;
    release?.();
    root.end();
    expect(decision.code).toBe('VALID');
    const id = root.spanContext().spanId;
    const children = (name: string, parent = id) => t.spans().filter((s) => s.name === name && parentOf(s) === parent);
    return { children };
  };

  it('keeps every step below the call span, on a cold call and on a cached key with a stale policy', async () => {
    const { validator, secret } = await setup(source);
    const cold = await call(validator, secret);
    if (source === 'cache') {
      const [lookup] = cold.children('keyward.cache.lookup');
      expect(cold.children('keyward.store.read', hexOf(lookup))).toHaveLength(1);
    } else {
      expect(cold.children('keyward.store.read')).toHaveLength(1);
    }
    expect(cold.children('keyward.policy.read')).toHaveLength(1);
    expect(cold.children('keyward.limits.check')).toHaveLength(1);

    await later(undefined); // the policy goes stale
    const warm = await call(validator, secret);
    expect(warm.children('keyward.cache.lookup')).toHaveLength(0);
    expect(warm.children('keyward.policy.read')).toHaveLength(1);
    expect(warm.children('keyward.limits.check')).toHaveLength(1);
  });
});
