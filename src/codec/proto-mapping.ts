import type { KeyRecord, KeyState as DomainKeyState } from '../domain/key-record';
import type { Decision, ValidationCode as DomainCode } from '../domain/validation';
import { InvalidArgumentError } from '../domain/errors';
import { ApiKey, KeyState } from '../gen/keyward/v1/api_key.pb';
import { ValidationCode, type ValidateKeyResponse } from '../gen/keyward/v1/key_service.pb';

const STATE_TO_PROTO: Record<DomainKeyState, KeyState> = {
  active: KeyState.KEY_STATE_ACTIVE,
  disabled: KeyState.KEY_STATE_DISABLED,
  revoked: KeyState.KEY_STATE_REVOKED,
  rotated: KeyState.KEY_STATE_ROTATED,
};

export function stateFromProto(field: string, s: KeyState): DomainKeyState | undefined {
  switch (s) {
    case KeyState.KEY_STATE_UNSPECIFIED:
      return undefined;
    case KeyState.KEY_STATE_ACTIVE:
      return 'active';
    case KeyState.KEY_STATE_DISABLED:
      return 'disabled';
    case KeyState.KEY_STATE_REVOKED:
      return 'revoked';
    case KeyState.KEY_STATE_ROTATED:
      return 'rotated';
    default:
      throw new InvalidArgumentError(field, 'must be a KeyState value');
  }
}

const CODE_TO_PROTO: Record<DomainCode, ValidationCode> = {
  VALID: ValidationCode.VALIDATION_CODE_VALID,
  MALFORMED: ValidationCode.VALIDATION_CODE_MALFORMED,
  NOT_FOUND: ValidationCode.VALIDATION_CODE_NOT_FOUND,
  DISABLED: ValidationCode.VALIDATION_CODE_DISABLED,
  REVOKED: ValidationCode.VALIDATION_CODE_REVOKED,
  EXPIRED: ValidationCode.VALIDATION_CODE_EXPIRED,
  NOT_YET_VALID: ValidationCode.VALIDATION_CODE_NOT_YET_VALID,
  INSUFFICIENT_SCOPE: ValidationCode.VALIDATION_CODE_INSUFFICIENT_SCOPE,
  RATE_LIMITED: ValidationCode.VALIDATION_CODE_RATE_LIMITED,
  USAGE_EXCEEDED: ValidationCode.VALIDATION_CODE_USAGE_EXCEEDED,
  FORBIDDEN: ValidationCode.VALIDATION_CODE_FORBIDDEN,
  ROTATED: ValidationCode.VALIDATION_CODE_ROTATED,
  UNAVAILABLE: ValidationCode.VALIDATION_CODE_UNAVAILABLE,
};

export function toDate(ms: number | undefined): Date | undefined {
  return ms === undefined ? undefined : new Date(ms);
}

export function fromDate(field: string, d: Date | undefined): number | undefined {
  if (d === undefined) return undefined;
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(field, 'must be a valid timestamp');
  return ms;
}

export function toApiKey(r: KeyRecord): ApiKey {
  return {
    id: r.id,
    service: r.service,
    owner: r.owner,
    name: r.name,
    prefix: r.prefix,
    hint: r.hint,
    scopes: [...r.scopes],
    metadata: { ...r.metadata },
    state: STATE_TO_PROTO[r.state],
    createTime: toDate(r.createdAt),
    updateTime: toDate(r.updatedAt),
    lastUsedTime: toDate(r.lastUsedAt),
    notBeforeTime: toDate(r.notBefore),
    expireTime: toDate(r.expiresAt),
    revokeTime: toDate(r.revokedAt),
    revokeReason: r.revokeReason ?? '',
    usageCount: r.usageCount,
    policyId: r.policyId ?? '',
    creditsRemaining: undefined,
    rotatedToKeyId: r.rotatedTo ?? '',
    rotatedFromKeyId: r.rotatedFrom ?? '',
    rotateTime: toDate(r.rotatedAt),
    graceEndTime: toDate(r.graceEndsAt),
  };
}

const EMPTY_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_SCOPES: string[] = Object.freeze([]) as unknown as string[];

/** The wire answer of a decision. Key details appear only when the key was found in the requested service. */
export function toValidateKeyResponse(d: Decision): ValidateKeyResponse {
  const r = d.record;
  // Only a valid answer says "superseded": a denied key has nothing to migrate.
  const superseded = d.code === 'VALID' && r?.rotatedTo !== undefined;
  return {
    valid: d.code === 'VALID',
    code: CODE_TO_PROTO[d.code],
    reason: d.reason,
    keyId: r?.id ?? '',
    service: r?.service ?? '',
    owner: r?.owner ?? '',
    scopes: (r?.scopes as string[]) ?? NO_SCOPES,
    metadata: (r?.metadata as Record<string, string>) ?? EMPTY_METADATA,
    expireTime: r?.expiresAt === undefined ? undefined : new Date(r.expiresAt),
    hint: r?.hint ?? '',
    limits:
      d.limits === undefined
        ? undefined
        : {
            creditsRemaining: d.limits.creditsRemaining,
            rateLimits: d.limits.rateLimits.map((l) => ({ name: l.name, limit: l.limit, remaining: l.remaining, resetTime: new Date(l.resetAt) })),
          },
    superseded,
    successorKeyId: superseded ? r!.rotatedTo! : '',
    graceEndTime: superseded && r!.graceEndsAt !== undefined ? new Date(r!.graceEndsAt) : undefined,
  };
}
