import { canAccess, type Access, type Principal } from '../domain/admin-access';
import { casBackoff, MAX_CAS_ATTEMPTS } from './cas-retry';
import type { Clock } from '../domain/clock';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../domain/errors';
import { checkPageSize, checkService } from '../domain/input-rules';
import type { KeyIdGenerator } from '../domain/key-id';
import type { Policy } from '../domain/policy';
import { checkPolicyFields, type PolicyFields } from '../domain/policy-rules';
import type { PolicyStore } from '../ports/policy-store';
import { decodePageToken, encodePageToken } from './page-token';

export const POLICY_ID_PATTERN = /^pol_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Paths of `UpdatePolicyRequest.update_mask`. */
export const POLICY_FIELDS = [
  'name',
  'allowed_scopes',
  'require_expiry',
  'max_lifetime',
  'max_age',
  'allowed_cidrs',
  'time_zone',
  'time_windows',
  'rate_limits',
  'credits',
  'max_active_keys',
  'service_default',
  'rotation',
] as const;
type PolicyPath = (typeof POLICY_FIELDS)[number];

export type PolicyChangeKind = 'created' | 'updated' | 'deleted';
export type PolicyChangeListener = (kind: PolicyChangeKind, policy: Policy, actor: string) => void | Promise<void>;

export interface PolicyView {
  readonly policy: Policy;
  readonly serviceDefault: boolean;
}

export interface PolicyAdminOptions {
  store: PolicyStore;
  clock: Clock;
  ids: KeyIdGenerator;
  onChange?: PolicyChangeListener;
  /**
   * Whether this sidecar can seal rotated secrets (a key-encryption key is configured); a policy
   * asking for the AUTO rotation strategy is refused without one. Default false.
   */
  canSealSecrets?: boolean;
}


/** Policy use cases behind `KeyAdminService`, under the same per-service access rules as keys. */
export class PolicyAdmin {
  constructor(private readonly opts: PolicyAdminOptions) {}

  async create(p: Principal, fields: PolicyFields, serviceDefault: boolean): Promise<PolicyView> {
    const checked = checkPolicyFields(fields);
    this.checkSealing(checked);
    this.authorize(p, checked.service, 'write');
    const now = this.opts.clock.now();
    const policy: Policy = { ...checked, id: this.opts.ids.next(now), createdAt: now, updatedAt: now, version: 1 };
    await this.opts.store.createPolicy(policy, { serviceDefault });
    await this.opts.onChange?.('created', policy, p.actor);
    return { policy, serviceDefault };
  }

  async get(p: Principal, id: string): Promise<PolicyView> {
    const policy = await this.load(p, id, 'read');
    return { policy, serviceDefault: (await this.opts.store.getServiceDefault(policy.service)) === policy.id };
  }

  async list(p: Principal, service: string, pageSize: number, pageToken: string): Promise<{ views: PolicyView[]; nextPageToken: string }> {
    checkService('service', service);
    const limit = checkPageSize('page_size', pageSize);
    const after = decodePageToken(pageToken, JSON.stringify(['policies', service]));
    this.authorize(p, service, 'read');
    const [page, def] = await Promise.all([this.opts.store.listPolicies({ service, limit, after }), this.opts.store.getServiceDefault(service)]);
    return {
      views: page.policies.map((policy) => ({ policy, serviceDefault: policy.id === def })),
      nextPageToken: page.nextAfter === undefined ? '' : encodePageToken(page.nextAfter, JSON.stringify(['policies', service])),
    };
  }

  async update(p: Principal, id: string, fields: Omit<PolicyFields, 'service'>, mask: readonly string[], serviceDefault: boolean): Promise<PolicyView> {
    checkPolicyId(id);
    if (mask.length === 0) throw new InvalidArgumentError('update_mask', `must name the fields to change, among ${POLICY_FIELDS.join(', ')}`);
    for (const path of mask) {
      if (!(POLICY_FIELDS as readonly string[]).includes(path)) {
        throw new InvalidArgumentError('update_mask', `unknown field ${JSON.stringify(path)}; allowed: ${POLICY_FIELDS.join(', ')}`);
      }
    }
    const paths = new Set(mask as PolicyPath[]);
    for (let attempt = 1; ; attempt++) {
      const current = await this.load(p, id, 'write');
      const merged: PolicyFields = {
        service: current.service,
        name: paths.has('name') ? fields.name : current.name,
        allowedScopes: paths.has('allowed_scopes') ? fields.allowedScopes : current.allowedScopes,
        requireExpiry: paths.has('require_expiry') ? fields.requireExpiry : current.requireExpiry,
        maxLifetimeMs: paths.has('max_lifetime') ? fields.maxLifetimeMs : current.maxLifetimeMs,
        maxAgeMs: paths.has('max_age') ? fields.maxAgeMs : current.maxAgeMs,
        allowedCidrs: paths.has('allowed_cidrs') ? fields.allowedCidrs : current.allowedCidrs,
        timeZone: paths.has('time_zone') ? fields.timeZone : current.timeZone,
        timeWindows: paths.has('time_windows') ? fields.timeWindows : current.timeWindows,
        rateLimits: paths.has('rate_limits') ? fields.rateLimits : current.rateLimits,
        credits: paths.has('credits') ? fields.credits : current.credits,
        maxActiveKeys: paths.has('max_active_keys') ? fields.maxActiveKeys : (current.maxActiveKeys ?? 0),
        rotation: paths.has('rotation') ? fields.rotation : current.rotation,
      };
      const checked = checkPolicyFields(merged);
      if (paths.has('rotation')) this.checkSealing(checked);
      const next: Policy = { ...dropUndefined(checked), id, createdAt: current.createdAt, updatedAt: this.opts.clock.now(), version: current.version + 1 };
      try {
        await this.opts.store.replacePolicy(next, current.version);
      } catch (err) {
        if (err instanceof ConflictError && attempt < MAX_CAS_ATTEMPTS) {
          await casBackoff(attempt);
          continue;
        }
        throw err;
      }
      if (paths.has('service_default')) {
        const def = await this.opts.store.getServiceDefault(next.service);
        if (serviceDefault) await this.opts.store.setServiceDefault(next.service, id);
        else if (def === id) await this.opts.store.setServiceDefault(next.service, undefined);
      }
      await this.opts.onChange?.('updated', next, p.actor);
      return this.get(p, id);
    }
  }

  async delete(p: Principal, id: string): Promise<void> {
    const policy = await this.load(p, id, 'write');
    const removed = await this.opts.store.deletePolicy(policy.id);
    if (!removed) throw new NotFoundError(`policy ${id} not found`);
    await this.opts.onChange?.('deleted', removed, p.actor);
  }

  private checkSealing(f: PolicyFields): void {
    if (f.rotation?.strategy === 'auto' && !this.opts.canSealSecrets) {
      throw new FailedPreconditionError(
        'policy.rotation: the AUTO strategy seals each rotated secret under a key-encryption key, and none is configured; ' +
          'set KEYWARD_KEK or KEYWARD_KEK_FILE on every sidecar, or use ROTATION_STRATEGY_NOTIFY',
      );
    }
  }

  private async load(p: Principal, id: string, access: Access): Promise<Policy> {
    checkPolicyId(id);
    const policy = await this.opts.store.getPolicy(id);
    if (!policy || !canAccess(p, policy.service, 'read')) throw new NotFoundError(`policy ${id} not found`);
    if (access === 'write') this.authorize(p, policy.service, 'write');
    return policy;
  }

  private authorize(p: Principal, service: string, access: Access): void {
    if (!canAccess(p, service, access)) {
      throw new PermissionDeniedError(`this credential cannot ${access} policies of service ${service} (needs service:${service}:${access} or admin)`);
    }
  }
}

export function checkPolicyId(id: string, field = 'policy_id'): string {
  if (!POLICY_ID_PATTERN.test(id)) throw new InvalidArgumentError(field, 'must be a policy id such as pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A');
  return id;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
