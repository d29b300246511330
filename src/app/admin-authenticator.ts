import { createHash, timingSafeEqual } from 'node:crypto';
import { ADMIN_SERVICE, rootPrincipal, type Principal } from '../domain/admin-access';
import { UnauthenticatedError } from '../domain/errors';
import { ScopeSet } from '../domain/scopes';
import type { KeyValidator } from './key-validator';

export interface AdminAuthenticatorOptions {
  /** The bootstrap token (`KEYWARD_ADMIN_TOKEN`); undefined disables root access. */
  bootstrapToken?: string;
  validator: KeyValidator;
}

/**
 * Turns `authorization: Bearer <credential>` into a `Principal`. The bootstrap token is compared
 * by SHA-256 digest in constant time; any other credential must be a valid key of the reserved
 * admin service, validated like every key (so revoking an admin key takes effect the same way).
 */
export class AdminAuthenticator {
  private readonly rootDigest?: Buffer;
  private readonly validator: KeyValidator;

  constructor(opts: AdminAuthenticatorOptions) {
    this.rootDigest = opts.bootstrapToken === undefined ? undefined : digest(opts.bootstrapToken);
    this.validator = opts.validator;
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) {
      throw new UnauthenticatedError('admin calls need "authorization: Bearer <admin token or admin key>" metadata');
    }
    const credential = match[1];
    if (this.rootDigest && timingSafeEqual(digest(credential), this.rootDigest)) return rootPrincipal();
    const decision = await this.validator.validate({
      key: credential,
      service: ADMIN_SERVICE,
      requiredScopes: [],
      clientIp: '',
      cost: 1,
    });
    if (decision.code !== 'VALID' || !decision.record) {
      throw new UnauthenticatedError(`admin credential is not valid (${decision.code})`);
    }
    return { actor: decision.record.id, scopes: new ScopeSet(decision.record.scopes) };
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
