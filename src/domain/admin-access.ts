import { ScopeSet } from './scopes';

/**
 * Who is calling the admin API. The bootstrap token is the root; every other admin credential
 * is a key of the reserved service `keyward-admin`, whose scopes say what it may do:
 * - `admin`: everything, including managing other admin credentials;
 * - `service:<name>:read`: read that service's keys (and, later, its policies and audit);
 * - `service:<name>:write`: read and change them.
 * Trailing wildcards apply (`service:*` = every tenant service, read and write), but only `admin`
 * reaches the reserved service itself, so no tenant credential can mint admin credentials.
 */
export const ADMIN_SERVICE = 'keyward-admin';
export const ADMIN_SCOPE = 'admin';

export type Access = 'read' | 'write';

export interface Principal {
  /** `root` for the bootstrap token; otherwise the admin key's id (recorded as the actor). */
  readonly actor: string;
  readonly scopes: ScopeSet;
}

export function rootPrincipal(): Principal {
  return { actor: 'root', scopes: new ScopeSet([ADMIN_SCOPE]) };
}

export function isAdmin(p: Principal): boolean {
  return p.scopes.grants(ADMIN_SCOPE);
}

export function canAccess(p: Principal, service: string, access: Access): boolean {
  if (isAdmin(p)) return true;
  if (service === ADMIN_SERVICE) return false;
  if (p.scopes.grants(`service:${service}:write`)) return true;
  return access === 'read' && p.scopes.grants(`service:${service}:read`);
}
