import { AlreadyExistsError, ConflictError, FailedPreconditionError, NotFoundError } from '../../domain/errors';
import type { Policy } from '../../domain/policy';
import type { PolicyPage, PolicyStore } from '../../ports/policy-store';
import { SortedIds } from './sorted-ids';

/** The embedded policy store; same contract as the Redis one. */
export class MemoryPolicyStore implements PolicyStore {
  private readonly byId = new Map<string, Policy>();
  private readonly byService = new Map<string, SortedIds>();
  private readonly defaults = new Map<string, string>();

  async createPolicy(policy: Policy, opts: { serviceDefault: boolean }): Promise<void> {
    if (this.byId.has(policy.id)) throw new AlreadyExistsError(`policy ${policy.id} already exists`);
    this.byId.set(policy.id, structuredClone(policy));
    this.index(policy.service).add(policy.id);
    if (opts.serviceDefault) this.defaults.set(policy.service, policy.id);
  }

  async getPolicy(id: string): Promise<Policy | undefined> {
    const p = this.byId.get(id);
    return p && structuredClone(p);
  }

  async listPolicies(q: { service: string; limit: number; after?: string }): Promise<PolicyPage> {
    const policies: Policy[] = [];
    for (const id of this.index(q.service).after(q.after)) {
      if (policies.length === q.limit) return { policies, nextAfter: policies[policies.length - 1].id };
      policies.push(structuredClone(this.byId.get(id)!));
    }
    return { policies };
  }

  async replacePolicy(policy: Policy, expectedVersion: number): Promise<void> {
    const current = this.byId.get(policy.id);
    if (!current) throw new NotFoundError(`policy ${policy.id} not found`);
    if (current.version !== expectedVersion) throw new ConflictError(`policy ${policy.id} was changed concurrently`);
    this.byId.set(policy.id, structuredClone(policy));
  }

  async deletePolicy(id: string): Promise<Policy | undefined> {
    const current = this.byId.get(id);
    if (!current) return undefined;
    if (this.defaults.get(current.service) === id) {
      throw new FailedPreconditionError(`policy ${id} is the default of service ${current.service}; make another policy the default or clear it first`);
    }
    this.byId.delete(id);
    this.index(current.service).remove(id);
    return current;
  }

  async getServiceDefault(service: string): Promise<string | undefined> {
    return this.defaults.get(service);
  }

  async setServiceDefault(service: string, policyId: string | undefined): Promise<void> {
    if (policyId === undefined) {
      this.defaults.delete(service);
      return;
    }
    const p = this.byId.get(policyId);
    if (!p || p.service !== service) throw new NotFoundError(`policy ${policyId} not found in service ${service}`);
    this.defaults.set(service, policyId);
  }

  private index(service: string): SortedIds {
    let ids = this.byService.get(service);
    if (!ids) {
      ids = new SortedIds();
      this.byService.set(service, ids);
    }
    return ids;
  }
}
