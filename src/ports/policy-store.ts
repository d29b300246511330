import type { Policy } from '../domain/policy';

export interface PolicyPage {
  readonly policies: Policy[];
  readonly nextAfter?: string;
}

/**
 * Policies and each service's default policy. Implemented in memory and in Redis (same
 * `{kw}` slot as key records); same error contract as `KeyStore`.
 */
export interface PolicyStore {
  /** `AlreadyExistsError` when the id is taken. With `serviceDefault`, also becomes the default. */
  createPolicy(policy: Policy, opts: { serviceDefault: boolean }): Promise<void>;
  getPolicy(id: string): Promise<Policy | undefined>;
  /** A service's policies in id order, O(log n + page). */
  listPolicies(query: { service: string; limit: number; after?: string }): Promise<PolicyPage>;
  /** Compare-and-set on `version`: `ConflictError` or `NotFoundError`. */
  replacePolicy(policy: Policy, expectedVersion: number): Promise<void>;
  /** `FailedPreconditionError` while it is its service's default. */
  deletePolicy(id: string): Promise<Policy | undefined>;
  getServiceDefault(service: string): Promise<string | undefined>;
  /** Makes `policyId` (a policy of that service) the default, or clears the default. */
  setServiceDefault(service: string, policyId: string | undefined): Promise<void>;
}
