import { canAccess, isAdmin, type Principal } from '../domain/admin-access';
import { InvalidArgumentError, PermissionDeniedError } from '../domain/errors';
import { checkKeyId, checkPageSize, checkService } from '../domain/input-rules';
import type { AuditLog, AuditPage } from '../ports/audit-log';
import { decodePageToken, encodePageToken } from './page-token';

export interface ListAuditInput {
  service: string;
  keyId: string;
  types: readonly string[];
  from?: number;
  to?: number;
  pageSize: number;
  pageToken: string;
}

const TYPE_PATTERN = /^[a-z_]+\.[a-z_]+$/;
const MAX_TYPES = 16;

/** `ListAuditEvents`: the audit trail, under the same per-service isolation as keys. */
export class AuditQuery {
  constructor(private readonly log: AuditLog) {}

  async list(p: Principal, input: ListAuditInput): Promise<{ page: AuditPage; nextPageToken: string }> {
    const service = input.service === '' ? undefined : checkService('service', input.service);
    const keyId = input.keyId === '' ? undefined : checkKeyId('key_id', input.keyId);
    if (input.types.length > MAX_TYPES) throw new InvalidArgumentError('types', `at most ${MAX_TYPES} types`);
    input.types.forEach((t, i) => {
      if (!TYPE_PATTERN.test(t)) throw new InvalidArgumentError(`types[${i}]`, 'must be an event or validation type such as key.revoked');
    });
    if (input.from !== undefined && input.to !== undefined && input.to < input.from) {
      throw new InvalidArgumentError('end_time', 'must not be before start_time');
    }
    const limit = checkPageSize('page_size', input.pageSize);
    const filters = JSON.stringify([service ?? '', keyId ?? '', [...input.types].sort(), input.from ?? '', input.to ?? '']);
    const before = decodePageToken(input.pageToken, filters);
    if (service === undefined) {
      if (!isAdmin(p)) throw new PermissionDeniedError('reading every service\'s audit trail needs the admin scope; set service');
    } else if (!canAccess(p, service, 'read')) {
      throw new PermissionDeniedError(`this credential cannot read the audit trail of service ${service}`);
    }
    const page = await this.log.list({ service, keyId, types: input.types, from: input.from, to: input.to, limit, before });
    return { page, nextPageToken: page.nextBefore === undefined ? '' : encodePageToken(page.nextBefore, filters) };
  }
}

