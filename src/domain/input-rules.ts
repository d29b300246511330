import { isIP } from 'node:net';
import { InvalidArgumentError } from './errors';
import { isValidPrefix, MAX_PREFIX_LENGTH } from './key-format';
import { isKeyId } from './key-id';
import { isValidScope, MAX_SCOPE_LENGTH } from './scopes';

/**
 * Limits on every request field. A violation is an `InvalidArgumentError` naming the field (in
 * the proto's spelling), raised before anything is written.
 */
export const LIMITS = {
  serviceName: /^[a-z0-9][a-z0-9-]{0,62}$/,
  ownerLength: 128,
  nameLength: 128,
  scopeCount: 64,
  scopeLength: MAX_SCOPE_LENGTH,
  metadataEntries: 32,
  metadataKeyLength: 64,
  metadataValueLength: 512,
  metadataTotalBytes: 4096,
  prefixLength: MAX_PREFIX_LENGTH,
  revokeReasonLength: 256,
  pageSizeDefault: 100,
  pageSizeMax: 1000,
  batchSize: 1000,
  /** Room for the longest token keyward issues: 128 owner characters take up to 7 bytes each in it. */
  pageTokenLength: 2048,
  maxCost: 1_000_000,
} as const;

/** Control characters are refused in free text: they break logs and terminals. */
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkService(field: string, service: string): string {
  if (!LIMITS.serviceName.test(service)) {
    throw new InvalidArgumentError(field, 'must match ^[a-z0-9][a-z0-9-]{0,62}$');
  }
  return service;
}

export function checkText(field: string, value: string, max: number): string {
  if (value.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters`);
  if (CONTROL.test(value)) throw new InvalidArgumentError(field, 'must not contain control characters');
  return value;
}

/** Validates and de-duplicates scopes, keeping their order. */
export function checkScopes(field: string, scopes: readonly string[]): string[] {
  if (scopes.length > LIMITS.scopeCount) {
    throw new InvalidArgumentError(field, `at most ${LIMITS.scopeCount} scopes are allowed`);
  }
  scopes.forEach((s, i) => {
    if (!isValidScope(s)) {
      throw new InvalidArgumentError(
        `${field}[${i}]`,
        `must be 1 to ${LIMITS.scopeLength} characters of [A-Za-z0-9:._/-] with an optional trailing *`,
      );
    }
  });
  return [...new Set(scopes)];
}

export function checkMetadata(field: string, metadata: Readonly<Record<string, string>>): Record<string, string> {
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataEntries) {
    throw new InvalidArgumentError(field, `at most ${LIMITS.metadataEntries} entries are allowed`);
  }
  let bytes = 0;
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > LIMITS.metadataKeyLength || CONTROL.test(k)) {
      throw new InvalidArgumentError(
        field,
        `keys must be 1 to ${LIMITS.metadataKeyLength} characters without control characters`,
      );
    }
    checkText(`${field}[${JSON.stringify(k)}]`, v, LIMITS.metadataValueLength);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > LIMITS.metadataTotalBytes) {
    throw new InvalidArgumentError(field, `must be at most ${LIMITS.metadataTotalBytes} bytes in all`);
  }
  return Object.fromEntries(entries);
}

export function checkPrefix(field: string, prefix: string): string {
  if (!isValidPrefix(prefix)) {
    throw new InvalidArgumentError(
      field,
      `must be lowercase letters and digits in 1 to 4 _-separated parts starting with a letter, at most ${LIMITS.prefixLength} characters (e.g. sk_live)`,
    );
  }
  return prefix;
}

export function checkKeyId(field: string, id: string): string {
  if (!isKeyId(id)) throw new InvalidArgumentError(field, 'must be a key id such as key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A');
  return id;
}

export function checkPageSize(field: string, size: number): number {
  if (!Number.isInteger(size) || size < 0 || size > LIMITS.pageSizeMax) {
    throw new InvalidArgumentError(field, `must be between 0 and ${LIMITS.pageSizeMax} (0 means ${LIMITS.pageSizeDefault})`);
  }
  return size === 0 ? LIMITS.pageSizeDefault : size;
}

export function checkClientIp(field: string, ip: string): string {
  if (ip !== '' && isIP(ip) === 0) throw new InvalidArgumentError(field, 'must be an IPv4 or IPv6 address');
  return ip;
}

export function checkCost(field: string, cost: number): number {
  if (!Number.isInteger(cost) || cost < 0 || cost > LIMITS.maxCost) {
    throw new InvalidArgumentError(field, `must be between 0 and ${LIMITS.maxCost}`);
  }
  return cost === 0 ? 1 : cost;
}

/** Validity window of a new or updated key: expiry in the future and after not-before. */
export function checkValidityWindow(now: number, notBefore: number | undefined, expiresAt: number | undefined): void {
  if (expiresAt !== undefined && expiresAt <= now) {
    throw new InvalidArgumentError('expire_time', 'must be in the future');
  }
  if (expiresAt !== undefined && notBefore !== undefined && expiresAt <= notBefore) {
    throw new InvalidArgumentError('expire_time', 'must be after not_before_time');
  }
}
