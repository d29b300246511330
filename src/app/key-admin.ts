import { ADMIN_SERVICE, canAccess, isAdmin, type Access, type Principal } from '../domain/admin-access';
import { casBackoff, MAX_CAS_ATTEMPTS } from './cas-retry';
import type { Clock } from '../domain/clock';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, ResourceExhaustedError } from '../domain/errors';
import type { Policy } from '../domain/policy';
import { effectiveCredits } from '../domain/policy-evaluation';
import { checkKeyCompliance } from '../domain/policy-rules';
import type { Limiter } from '../ports/limiter';
import type { PolicyStore } from '../ports/policy-store';
import { checkPolicyId } from './policy-admin';
import {
  checkKeyId,
  checkMetadata,
  checkPageSize,
  checkPrefix,
  checkScopes,
  checkService,
  checkText,
  checkValidityWindow,
  LIMITS,
} from '../domain/input-rules';
import { displayHint, generateKey, parseKey } from '../domain/key-format';
import { hashKey } from '../domain/key-hash';
import type { KeyIdGenerator } from '../domain/key-id';
import { applyChanges, limitsIdOf, revoke, type KeyChanges, type KeyRecord, type KeyState } from '../domain/key-record';
import type { Fence, KeyStore } from '../ports/key-store';
import { SealedSecretError, type SecretSealer } from '../ports/secret-sealer';
import { checkRotatable, MAX_GRACE_PERIOD_MS, rotateRecord, withDueAt } from '../domain/rotation';
import { decodePageToken, encodePageToken } from './page-token';

export interface CreateKeyInput {
  service: string;
  owner: string;
  name: string;
  scopes: readonly string[];
  metadata: Readonly<Record<string, string>>;
  /** Empty means the configured default prefix. */
  prefix: string;
  notBefore?: number;
  expiresAt?: number;
  /** Empty or absent: the service's default policy applies. */
  policyId?: string;
  /** The key's own starting credits. */
  credits?: number;
}

export interface ListKeysInput {
  service: string;
  owner: string;
  state?: KeyState;
  pageSize: number;
  pageToken: string;
}

export const UPDATABLE_FIELDS = ['name', 'scopes', 'metadata', 'expire_time', 'enabled', 'policy_id', 'credits'] as const;
type UpdatableField = (typeof UPDATABLE_FIELDS)[number];

export interface UpdateKeyInput {
  keyId: string;
  /** Field names (proto spelling) to change; required and non-empty. */
  updateMask: readonly string[];
  name: string;
  scopes: readonly string[];
  metadata: Readonly<Record<string, string>>;
  expiresAt?: number;
  enabled: boolean;
  policyId?: string;
  credits?: number;
}

/** A committed change, as told to the listener that evicts caches, publishes events and audits. */
export type KeyChange =
  | { readonly kind: 'created'; readonly record: KeyRecord; readonly actor: string }
  | { readonly kind: 'updated'; readonly record: KeyRecord; readonly actor: string; readonly changedFields: readonly string[] }
  | { readonly kind: 'revoked'; readonly record: KeyRecord; readonly actor: string; readonly reason: string }
  | { readonly kind: 'deleted'; readonly record: KeyRecord; readonly actor: string }
  /** `record` is the superseded key. */
  | { readonly kind: 'rotated'; readonly record: KeyRecord; readonly successor: KeyRecord; readonly actor: string; readonly sealed: boolean }
  /** An admin claimed the sealed secret of `record` (an automatic rotation's successor). */
  | { readonly kind: 'secret_claimed'; readonly record: KeyRecord; readonly actor: string }
  /** Lifecycle scheduler: the key reached its expiry (or a `notify` policy's maximum age). */
  | { readonly kind: 'expired'; readonly record: KeyRecord; readonly actor: string }
  /** Lifecycle scheduler: a `notify` policy's notice; `dueAt` is when the key reaches its maximum age. */
  | { readonly kind: 'rotation_due'; readonly record: KeyRecord; readonly actor: string; readonly dueAt: number };
export type KeyChangeKind = KeyChange['kind'];
/** Awaited after the store write; it must not throw (the write is committed either way). */
export type KeyChangeListener = (change: KeyChange) => void | Promise<void>;

export interface KeyAdminOptions {
  store: KeyStore;
  clock: Clock;
  ids: KeyIdGenerator;
  defaultPrefix: string;
  onChange?: KeyChangeListener;
  /** Policies: compliance at create and update, the service quota. Absent: no policies. */
  policies?: PolicyStore;
  /** Credits: set by `UpdateKey`, shown by `GetKey`, forgotten on delete. Absent: no credits. */
  limiter?: Limiter;
  /** Told when a create or re-enable is refused by the service quota. */
  onQuotaExceeded?: (service: string, limit: number, actor: string) => void;
  /** Grace period of a rotation when neither the request nor the key's policy sets one. */
  defaultGracePeriodMs?: number;
  /** Seals the secrets of automatic rotations; absent when no key-encryption key is configured. */
  sealer?: SecretSealer;
}

/** How a rotation is done: by an admin (secret returned) or by the scheduler (secret sealed). */
export interface RotationOptions {
  readonly actor: string;
  /** Undefined: the key's policy's grace period, else the configured default. */
  readonly gracePeriodMs?: number;
  /** Seal the successor's secret for `ClaimRotatedSecret` (needs a sealer). */
  readonly seal?: boolean;
  /** The scheduler's lease, checked in the same atomic write. */
  readonly fence?: Fence;
  /**
   * The scheduler emits the rotation's events itself (with ids derived from the step), after
   * the write: the listener is not called, and the superseded record is written due at the
   * rotation time (`dueAt === rotatedAt`, see `rotationEventsPending`), so that a scheduler
   * that crashes before emitting finds the key again on its next tick and emits them then.
   */
  readonly deferEvents?: boolean;
}

/** Whether a superseded key still waits for the scheduler to emit its rotation's events. */
export function rotationEventsPending(record: KeyRecord): boolean {
  return record.rotatedTo !== undefined && record.rotatedAt !== undefined && record.dueAt === record.rotatedAt;
}


/**
 * Key lifecycle use cases behind `KeyAdminService`. Every input is checked before any write, so
 * a rejected request writes nothing; access is checked per service (see admin-access.ts).
 */
export class KeyAdmin {
  private readonly store: KeyStore;
  private readonly clock: Clock;
  private readonly ids: KeyIdGenerator;
  private readonly defaultPrefix: string;
  private readonly onChange: KeyChangeListener;
  private readonly policies?: PolicyStore;
  private readonly limiter?: Limiter;
  private readonly onQuotaExceeded: NonNullable<KeyAdminOptions['onQuotaExceeded']>;
  private readonly defaultGracePeriodMs: number;
  private readonly sealer?: SecretSealer;

  constructor(opts: KeyAdminOptions) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.ids = opts.ids;
    this.defaultPrefix = opts.defaultPrefix;
    this.onChange = opts.onChange ?? (() => {});
    this.policies = opts.policies;
    this.limiter = opts.limiter;
    this.onQuotaExceeded = opts.onQuotaExceeded ?? (() => {});
    this.defaultGracePeriodMs = opts.defaultGracePeriodMs ?? 86_400_000;
    this.sealer = opts.sealer;
  }

  async create(p: Principal, input: CreateKeyInput): Promise<{ record: KeyRecord; secret: string }> {
    const service = checkService('service', input.service);
    const owner = checkText('owner', input.owner, LIMITS.ownerLength);
    const name = checkText('name', input.name, LIMITS.nameLength);
    const scopes = checkScopes('scopes', input.scopes);
    const metadata = checkMetadata('metadata', input.metadata);
    const prefix = checkPrefix('prefix', input.prefix || this.defaultPrefix);
    const now = this.clock.now();
    checkValidityWindow(now, input.notBefore, input.expiresAt);
    const policyId = !input.policyId ? undefined : checkPolicyId(input.policyId);
    const credits = input.credits === undefined ? undefined : checkCredits(input.credits);
    this.authorize(p, service, 'write');
    const { effective, serviceDefault } = await this.policiesFor(service, policyId);
    if (effective) checkKeyCompliance(effective, { scopes, createdAt: now, expiresAt: input.expiresAt, credits });

    const secret = generateKey(prefix);
    const record: KeyRecord = withDueAt({
      id: this.ids.next(now),
      hash: hashKey(secret),
      service,
      owner,
      name,
      prefix,
      hint: displayHint(parseKey(secret)!),
      scopes,
      metadata,
      state: 'active',
      createdAt: now,
      updatedAt: now,
      ...(input.notBefore !== undefined && { notBefore: input.notBefore }),
      ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
      ...(policyId !== undefined && { policyId }),
      ...(credits !== undefined && { credits }),
      usageCount: 0,
      version: 1,
    }, effective);
    await this.withQuota(service, serviceDefault, p.actor, (maxActiveKeys) => this.store.create(record, { maxActiveKeys }));
    await this.onChange({ kind: 'created', record, actor: p.actor });
    return { record, secret };
  }

  async get(p: Principal, keyId: string): Promise<KeyRecord> {
    return this.load(p, checkKeyId('key_id', keyId), 'read');
  }

  async list(p: Principal, input: ListKeysInput): Promise<{ records: KeyRecord[]; nextPageToken: string }> {
    const service = input.service === '' ? undefined : checkService('service', input.service);
    const owner = input.owner === '' ? undefined : checkText('owner', input.owner, LIMITS.ownerLength);
    const limit = checkPageSize('page_size', input.pageSize);
    const filters = JSON.stringify([service ?? '', owner ?? '', input.state ?? '']);
    const after = decodePageToken(input.pageToken, filters);
    if (service === undefined) {
      if (!isAdmin(p)) throw new PermissionDeniedError('listing every service needs the admin scope; set service');
    } else {
      this.authorize(p, service, 'read');
    }
    const page = await this.store.list({ service, owner, state: input.state, limit, after });
    return {
      records: page.records,
      nextPageToken: page.nextAfter === undefined ? '' : encodePageToken(page.nextAfter, filters),
    };
  }

  async update(p: Principal, input: UpdateKeyInput): Promise<KeyRecord> {
    const keyId = checkKeyId('key_id', input.keyId);
    const changes = this.checkUpdate(input);
    const credits = input.updateMask.includes('credits') ? checkCredits(input.credits ?? 0) : undefined;
    if (credits !== undefined && this.limiter === undefined) throw new InvalidArgumentError('update_mask', 'credits are not available here');
    const changedFields = [...new Set(input.updateMask)];
    let record: KeyRecord;
    if (Object.keys(changes).length === 0) {
      record = await this.load(p, keyId, 'write'); // credits only: the record does not change
    } else {
      record = await this.mutate(p, keyId, (r) => applyChanges(r, changes, this.clock.now()), (committed) => ({
        kind: 'updated',
        record: committed,
        actor: p.actor,
        changedFields,
      }), (next, current, { effective, serviceDefault }) => {
        if (effective && (changes.scopes || changes.expiresAt !== undefined || changes.policyId !== undefined)) {
          checkKeyCompliance(effective, { scopes: next.scopes, createdAt: next.createdAt, expiresAt: next.expiresAt, credits: next.credits });
        }
        const enabling = next.state === 'active' && current.state !== 'active';
        return enabling ? serviceDefault?.maxActiveKeys : undefined;
      });
    }
    if (credits !== undefined) await this.limiter!.setCredits(limitsIdOf(record), credits, this.clock.now());
    return record;
  }

  /** Credits left for a key, or undefined when no credit rule applies to it. */
  async creditsOf(record: KeyRecord): Promise<number | undefined> {
    const { effective } = await this.policiesFor(record.service, record.policyId, false);
    const rule = effectiveCredits(effective, record.credits);
    return rule === undefined || this.limiter === undefined ? undefined : this.limiter.credits(limitsIdOf(record), rule, this.clock.now());
  }

  async revoke(p: Principal, keyId: string, reason: string): Promise<KeyRecord> {
    checkKeyId('key_id', keyId);
    checkText('reason', reason, LIMITS.revokeReasonLength);
    return this.mutate(p, keyId, (r) => revoke(r, reason, this.clock.now()), (record) => ({
      kind: 'revoked',
      record,
      actor: p.actor,
      reason,
    }));
  }

  /** `RotateKey`: the successor's secret is returned here, once. */
  async rotate(p: Principal, keyId: string, gracePeriodMs?: number): Promise<{ retired: KeyRecord; successor: KeyRecord; secret: string }> {
    checkKeyId('key_id', keyId);
    if (gracePeriodMs !== undefined && (!Number.isSafeInteger(gracePeriodMs) || gracePeriodMs < 0 || gracePeriodMs > MAX_GRACE_PERIOD_MS)) {
      throw new InvalidArgumentError('grace_period', 'must be from 0 to 90 days');
    }
    const current = await this.load(p, keyId, 'write');
    return this.rotateRecord(current, { actor: p.actor, gracePeriodMs }, (id) => this.load(p, id, 'write'));
  }

  /**
   * Rotates a loaded key (the admin call above, and the scheduler's `auto` strategy): checks it
   * can be rotated, builds the successor, and writes both atomically, retrying from a fresh read
   * when a concurrent writer won. `reload` re-reads the key for a retry.
   */
  async rotateRecord(
    loaded: KeyRecord,
    opts: RotationOptions,
    reload: (id: string) => Promise<KeyRecord> = async (id) => {
      const r = await this.store.getById(id);
      if (!r) throw notFound(id);
      return r;
    },
  ): Promise<{ retired: KeyRecord; successor: KeyRecord; secret: string }> {
    if (opts.seal && this.sealer === undefined) throw new FailedPreconditionError('sealing a rotated secret needs a key-encryption key (KEYWARD_KEK or KEYWARD_KEK_FILE)');
    let current = loaded;
    for (let attempt = 1; ; attempt++) {
      const now = this.clock.now();
      checkRotatable(current, now);
      const { effective } = await this.policiesFor(current.service, current.policyId, false);
      const gracePeriodMs = opts.gracePeriodMs ?? effective?.rotation?.gracePeriodMs ?? this.defaultGracePeriodMs;
      const secret = generateKey(current.prefix);
      const rotation = rotateRecord(current, { id: this.ids.next(now), hash: hashKey(secret), hint: displayHint(parseKey(secret)!), now, gracePeriodMs });
      const retired = opts.deferEvents ? { ...rotation.retired, dueAt: now } : withDueAt(rotation.retired, effective);
      const successor = withDueAt(rotation.successor, effective);
      if (effective) {
        checkKeyCompliance(effective, { scopes: successor.scopes, createdAt: now, expiresAt: successor.expiresAt, credits: successor.credits });
      }
      const sealed = opts.seal ? { sealed: this.sealer!.seal(secret, successor.id), expiresAt: retired.graceEndsAt! } : undefined;
      try {
        await this.store.rotate({ retired, expectedVersion: current.version, successor, ...(sealed && { sealed }) }, { fence: opts.fence });
      } catch (err) {
        if (err instanceof ConflictError && attempt < MAX_CAS_ATTEMPTS) {
          await casBackoff(attempt);
          current = await reload(current.id);
          continue;
        }
        if (err instanceof NotFoundError) throw notFound(current.id);
        throw err;
      }
      if (!opts.deferEvents) await this.onChange({ kind: 'rotated', record: retired, successor, actor: opts.actor, sealed: sealed !== undefined });
      return { retired, successor, secret };
    }
  }

  /**
   * `ClaimRotatedSecret`: the sealed secret of an automatic rotation's successor, once, within
   * the grace period. `keyId` is the successor's id or its predecessor's.
   */
  async claimRotatedSecret(p: Principal, keyId: string): Promise<{ record: KeyRecord; secret: string }> {
    const named = await this.load(p, checkKeyId('key_id', keyId), 'write');
    const successor = named.rotatedTo === undefined ? named : await this.load(p, named.rotatedTo, 'write');
    if (successor.rotatedFrom === undefined) throw new FailedPreconditionError(`key ${successor.id} was not created by a rotation; there is no secret to claim`);
    if (this.sealer === undefined) throw new FailedPreconditionError('no key-encryption key is configured (KEYWARD_KEK or KEYWARD_KEK_FILE), so no secret was sealed');
    const predecessor = await this.store.getById(successor.rotatedFrom);
    const graceEndsAt = predecessor?.graceEndsAt;
    if (graceEndsAt === undefined || this.clock.now() >= graceEndsAt) {
      await this.store.takeSealedSecret(successor.id); // destroy what may be left
      throw new FailedPreconditionError(`the grace period of the rotation to ${successor.id} is over; its secret can no longer be claimed`);
    }
    const gone = () => new FailedPreconditionError(`the secret of key ${successor.id} was already claimed, or was never sealed (a manual rotation returns it at once)`);
    // Open and check the sealed copy before destroying it: a claim on a sidecar with another
    // key-encryption key (mid-rollout) must fail without losing the secret.
    const sealed = await this.store.readSealedSecret(successor.id);
    if (sealed === undefined) throw gone();
    let secret: string;
    try {
      secret = this.sealer.open(sealed.sealed, successor.id);
    } catch (err) {
      if (err instanceof SealedSecretError) throw new FailedPreconditionError(`the secret of key ${successor.id} cannot be opened here: ${err.message}`);
      throw err;
    }
    if (hashKey(secret) !== successor.hash) throw new FailedPreconditionError(`the sealed secret of key ${successor.id} does not match the key`);
    // Only the claim that removes it gets it: two concurrent claims cannot both succeed.
    if ((await this.store.takeSealedSecret(successor.id)) === undefined) throw gone();
    await this.onChange({ kind: 'secret_claimed', record: successor, actor: p.actor });
    return { record: successor, secret };
  }

  async delete(p: Principal, keyId: string): Promise<void> {
    const record = await this.load(p, checkKeyId('key_id', keyId), 'write');
    const removed = await this.store.delete(record.id);
    if (!removed) throw notFound(keyId);
    // A superseded key's limits live on in its successor (they share `limitsId`).
    if (removed.rotatedTo === undefined) await this.limiter?.forget(limitsIdOf(removed));
    await this.onChange({ kind: 'deleted', record: removed, actor: p.actor });
  }

  private checkUpdate(input: UpdateKeyInput): KeyChanges {
    if (input.updateMask.length === 0) {
      throw new InvalidArgumentError('update_mask', `must name the fields to change, among ${UPDATABLE_FIELDS.join(', ')}`);
    }
    const changes: KeyChanges = {};
    for (const path of new Set(input.updateMask)) {
      switch (path as UpdatableField) {
        case 'name':
          changes.name = checkText('name', input.name, LIMITS.nameLength);
          break;
        case 'scopes':
          changes.scopes = checkScopes('scopes', input.scopes);
          break;
        case 'metadata':
          changes.metadata = checkMetadata('metadata', input.metadata);
          break;
        case 'expire_time':
          if (input.expiresAt !== undefined) checkValidityWindow(this.clock.now(), undefined, input.expiresAt);
          changes.expiresAt = input.expiresAt ?? null;
          break;
        case 'enabled':
          changes.enabled = input.enabled;
          break;
        case 'policy_id':
          changes.policyId = !input.policyId ? null : checkPolicyId(input.policyId);
          break;
        case 'credits':
          break; // not part of the record: applied through the limiter
        default:
          throw new InvalidArgumentError('update_mask', `unknown field ${JSON.stringify(path)}; allowed: ${UPDATABLE_FIELDS.join(', ')}`);
      }
    }
    return changes;
  }

  /** Read-modify-write with compare-and-set, retried when a concurrent writer wins. */
  private async mutate(
    p: Principal,
    keyId: string,
    change: (r: KeyRecord) => KeyRecord,
    describe: (committed: KeyRecord) => KeyChange,
    /**
     * Checks the new record against its policies (read once per attempt, strictly: a named policy
     * must exist); returns the quota that applies, if any.
     */
    check?: (next: KeyRecord, current: KeyRecord, policies: { effective?: Policy; serviceDefault?: Policy }) => number | undefined,
  ): Promise<KeyRecord> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.load(p, keyId, 'write');
      let next = change(current);
      if (next === current) return current; // no-op (e.g. revoking a revoked key)
      if (next.expiresAt !== undefined && current.notBefore !== undefined && next.expiresAt <= current.notBefore) {
        throw new InvalidArgumentError('expire_time', 'must be after the key\'s not_before_time');
      }
      const policies = await this.policiesFor(next.service, next.policyId, check !== undefined);
      next = withDueAt(next, policies.effective);
      const maxActiveKeys = check ? check(next, current, policies) : undefined;
      try {
        await this.store.replace(next, current.version, { maxActiveKeys });
      } catch (err) {
        if (err instanceof ResourceExhaustedError && maxActiveKeys !== undefined) this.onQuotaExceeded(next.service, maxActiveKeys, p.actor);
        if (err instanceof ConflictError && attempt < MAX_CAS_ATTEMPTS) {
          await casBackoff(attempt);
          continue;
        }
        if (err instanceof NotFoundError) throw notFound(keyId);
        throw err;
      }
      await this.onChange(describe(next));
      return next;
    }
  }

  /**
   * The policy a key of `service` would follow (its own, else the service default) and the
   * service default itself (for the quota). A named policy must exist in the same service.
   */
  private async policiesFor(
    service: string,
    policyId: string | undefined,
    strict = true,
  ): Promise<{ effective?: Policy; serviceDefault?: Policy }> {
    if (this.policies === undefined) return {};
    const policies = this.policies;
    const defaultId = await policies.getServiceDefault(service);
    const [own, serviceDefault] = await Promise.all([
      policyId === undefined ? undefined : policies.getPolicy(policyId),
      defaultId === undefined ? undefined : policies.getPolicy(defaultId),
    ]);
    if (policyId !== undefined && (own === undefined || own.service !== service)) {
      if (strict) throw new InvalidArgumentError('policy_id', `no policy ${policyId} in service ${service}`);
      return { serviceDefault };
    }
    return { effective: own ?? serviceDefault, serviceDefault };
  }

  private async withQuota(service: string, serviceDefault: Policy | undefined, actor: string, write: (max?: number) => Promise<void>): Promise<void> {
    const max = serviceDefault?.maxActiveKeys || undefined;
    try {
      await write(max);
    } catch (err) {
      if (err instanceof ResourceExhaustedError && max !== undefined) this.onQuotaExceeded(service, max, actor);
      throw err;
    }
  }

  /** Loads a record the principal may see; others' keys are indistinguishable from missing ones. */
  private async load(p: Principal, keyId: string, access: Access): Promise<KeyRecord> {
    const record = await this.store.getById(keyId);
    if (!record || !canAccess(p, record.service, 'read')) throw notFound(keyId);
    if (access === 'write') this.authorize(p, record.service, 'write');
    return record;
  }

  private authorize(p: Principal, service: string, access: Access): void {
    if (!canAccess(p, service, access)) {
      const needed = service === ADMIN_SERVICE ? 'the admin scope' : `service:${service}:${access} or admin`;
      throw new PermissionDeniedError(`this credential cannot ${access} keys of service ${service} (needs ${needed})`);
    }
  }
}

function checkCredits(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > 1_000_000_000) throw new InvalidArgumentError('credits', 'must be a whole number from 0 to 1000000000');
  return n;
}

function notFound(keyId: string): NotFoundError {
  return new NotFoundError(`key ${keyId} not found`);
}
