import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { MemoryAuditLog } from '../../../src/adapters/audit/memory-audit-log';
import { AesGcmSealer } from '../../../src/adapters/crypto/aes-gcm-sealer';
import { MemoryEventOutbox } from '../../../src/adapters/events/memory-event-outbox';
import { MemoryLease, MemoryLeaseTable } from '../../../src/adapters/events/memory-lease';
import { MemoryLimiter } from '../../../src/adapters/limits/memory-limiter';
import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { AuditRecorder } from '../../../src/app/audit-recorder';
import { KeyAdmin } from '../../../src/app/key-admin';
import { keyChangeEffects, lifecycleEffects, type LifecycleEffects } from '../../../src/app/key-change-effects';
import { LifecycleScheduler, type LifecycleSchedulerOptions } from '../../../src/app/lifecycle-scheduler';
import { PolicyAdmin } from '../../../src/app/policy-admin';
import { rootPrincipal } from '../../../src/domain/admin-access';
import { ManualClock } from '../../../src/domain/clock';
import { KeyIdGenerator } from '../../../src/domain/key-id';
import type { KeyRecord } from '../../../src/domain/key-record';
import type { RotationRule } from '../../../src/domain/policy';
import type { PolicyFields } from '../../../src/domain/policy-rules';
import { makePolicyFields } from './records';
import { compilePolicy } from '../../../src/domain/policy-evaluation';
import { decide, toValidationEntry, type Decision } from '../../../src/domain/validation';
import type { EventOutbox } from '../../../src/ports/event-outbox';
import type { KeyStore } from '../../../src/ports/key-store';

export const T0 = 1_700_000_000_000;
export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const root = rootPrincipal();
export const logger = pino({ level: 'silent' });

export interface EnvOptions {
  /** Wraps the memory store (failure injection); default: the store itself. */
  wrapStore?: (s: MemoryKeyStore) => KeyStore;
  wrapOutbox?: (o: MemoryEventOutbox) => EventOutbox;
  sealer?: boolean;
  defaultGracePeriodMs?: number;
}

/** keyward's app layer on the memory adapters, a fake clock and one lease table. */
export function lifecycleEnv(opts: EnvOptions = {}) {
  const clock = new ManualClock(T0);
  const now = () => clock.now();
  const leases = new MemoryLeaseTable();
  const memoryStore = new MemoryKeyStore({ leases, now });
  const store = opts.wrapStore ? opts.wrapStore(memoryStore) : memoryStore;
  const policyStore = new MemoryPolicyStore();
  const memoryOutbox = new MemoryEventOutbox();
  const outbox = opts.wrapOutbox ? opts.wrapOutbox(memoryOutbox) : memoryOutbox;
  const auditLog = new MemoryAuditLog({ maxEntries: 1_000_000, retentionMs: 1e12, now });
  const audit = new AuditRecorder({ log: auditLog, logger, intervalMs: 1000, throttleMs: 0 });
  const effectsOptions = { outbox, audit, clock, eventIds: new KeyIdGenerator(undefined, 'evt'), logger };
  const sealer = opts.sealer === false ? undefined : new AesGcmSealer(randomBytes(32));
  const admin = new KeyAdmin({
    store,
    clock,
    ids: new KeyIdGenerator(),
    defaultPrefix: 'sk',
    onChange: keyChangeEffects(effectsOptions),
    policies: policyStore,
    limiter: new MemoryLimiter(),
    defaultGracePeriodMs: opts.defaultGracePeriodMs ?? HOUR,
    sealer,
  });
  const policyAdmin = new PolicyAdmin({ store: policyStore, clock, ids: new KeyIdGenerator(undefined, 'pol'), canSealSecrets: sealer !== undefined });
  const effects: LifecycleEffects = lifecycleEffects(effectsOptions);

  const env = {
    clock,
    leases,
    memoryStore,
    store,
    policyStore,
    outbox: memoryOutbox,
    auditLog,
    admin,
    policyAdmin,
    sealer,

    scheduler(name: string, o: Partial<LifecycleSchedulerOptions> = {}): LifecycleScheduler {
      return new LifecycleScheduler({
        store,
        policies: policyStore,
        admin,
        lease: new MemoryLease({ table: leases, name: 'scheduler', instanceId: name, now }),
        effects,
        clock,
        logger,
        ...o,
      });
    },

    async createKey(overrides: Partial<Parameters<KeyAdmin['create']>[1]> = {}) {
      return admin.create(root, { service: 'orders', owner: 'team-a', name: 'checkout', scopes: ['orders:read'], metadata: { env: 'prod' }, prefix: '', ...overrides });
    },

    /** A service-default policy for `orders` with a max age and rotation rule. */
    async rotationPolicy(maxAgeMs: number, rotation: RotationRule, extra: Partial<PolicyFields> = {}) {
      const fields = makePolicyFields({ name: `rotation-${rotation.strategy}`, maxAgeMs, rotation, ...extra });
      return (await policyAdmin.create(root, fields, true)).policy;
    },

    async get(id: string): Promise<KeyRecord> {
      const r = await memoryStore.getById(id);
      if (!r) throw new Error(`no key ${id}`);
      return r;
    },

    /** The decision a validator would take now, with the key's effective policy. */
    async validate(id: string): Promise<Decision> {
      const r = await env.get(id);
      const defaultId = await policyStore.getServiceDefault(r.service);
      const p = r.policyId ?? defaultId;
      const policy = p === undefined ? undefined : await policyStore.getPolicy(p);
      return decide(toValidationEntry(r), { requiredScopes: [], service: 'orders' }, clock.now(), policy && compilePolicy(policy));
    },

    /** Every event appended to the outbox, oldest first. */
    async events(): Promise<{ id: string; type: string; keyId: string; body: Record<string, unknown> }[]> {
      const entries = await memoryOutbox.read(undefined, 1_000_000, 0);
      return entries.map((e) => ({ id: e.event.id, type: e.event.type, keyId: e.event.keyId, body: JSON.parse(e.event.body) }));
    },

    async auditTypes(keyId?: string): Promise<string[]> {
      const page = await auditLog.list({ types: [], limit: 100_000, ...(keyId && { keyId }) });
      return page.entries.map((e) => e.type).reverse();
    },
  };
  return env;
}
