import { ADMIN_SCOPE, ADMIN_SERVICE, canAccess, isAdmin, rootPrincipal, type Principal } from '../../../src/domain/admin-access';
import { ScopeSet } from '../../../src/domain/scopes';

const principal = (...scopes: string[]): Principal => ({ actor: 'key_x', scopes: new ScopeSet(scopes) });

describe('admin access', () => {
  it('names the reserved service and scope', () => {
    expect(ADMIN_SERVICE).toBe('keyward-admin');
    expect(ADMIN_SCOPE).toBe('admin');
  });

  it('the root principal is an admin acting as "root"', () => {
    const root = rootPrincipal();
    expect(root.actor).toBe('root');
    expect(isAdmin(root)).toBe(true);
    expect(rootPrincipal()).not.toBe(root);
  });

  it('isAdmin needs the admin scope', () => {
    expect(isAdmin(principal('admin'))).toBe(true);
    expect(isAdmin(principal('service:orders:write'))).toBe(false);
    expect(isAdmin(principal('service:*'))).toBe(false);
    expect(isAdmin(principal('admins'))).toBe(false);
    expect(isAdmin(principal())).toBe(false);
  });

  type Row = [string, string[], string, 'read' | 'write', boolean];
  const rows: Row[] = [
    ['admin reads any service', ['admin'], 'orders', 'read', true],
    ['admin writes any service', ['admin'], 'orders', 'write', true],
    ['admin writes the admin service', ['admin'], ADMIN_SERVICE, 'write', true],
    ['write scope reads', ['service:orders:write'], 'orders', 'read', true],
    ['write scope writes', ['service:orders:write'], 'orders', 'write', true],
    ['read scope reads', ['service:orders:read'], 'orders', 'read', true],
    ['read scope cannot write', ['service:orders:read'], 'orders', 'write', false],
    ['scopes are per service', ['service:orders:write'], 'billing', 'read', false],
    ['no prefix confusion', ['service:orders:write'], 'orders-eu', 'read', false],
    ['service wildcard reads', ['service:orders:*'], 'orders', 'read', true],
    ['service wildcard writes', ['service:orders:*'], 'orders', 'write', true],
    ['tenant wildcard reaches every tenant', ['service:*'], 'billing', 'write', true],
    ['tenant wildcard does not reach the admin service (read)', ['service:*'], ADMIN_SERVICE, 'read', false],
    ['tenant wildcard does not reach the admin service (write)', ['service:*'], ADMIN_SERVICE, 'write', false],
    ['explicit admin-service scope is not enough', [`service:${ADMIN_SERVICE}:write`], ADMIN_SERVICE, 'write', false],
    ['explicit admin-service read scope is not enough', [`service:${ADMIN_SERVICE}:read`], ADMIN_SERVICE, 'read', false],
    ['no scopes, no access', [], 'orders', 'read', false],
    ['unrelated scopes, no access', ['orders:read'], 'orders', 'read', false],
  ];
  it.each(rows)('%s', (_label, scopes, service, access, expected) => {
    expect(canAccess(principal(...scopes), service, access)).toBe(expected);
  });
});
