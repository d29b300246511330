import { z } from 'zod';
import { AlreadyExistsError } from '../domain/errors';
import { LIMITS } from '../domain/input-rules';
import { KEY_ID_PATTERN } from '../domain/key-id';
import { KEY_STATES, type KeyRecord } from '../domain/key-record';
import type { KeyStore } from '../ports/key-store';

/**
 * Backup and restore of the store of record as JSON lines, one `KeyRecord` per line, in id
 * order. Records hold key hashes, never secrets, so an export restores every key without
 * anyone learning a secret. Import is idempotent: a record whose id exists is left alone.
 *
 * Rotation links and the scheduler's bookkeeping (`dueAt`, steps done) travel with the records,
 * and `create` re-indexes `dueAt`, so the scheduler picks restored keys up where it left them.
 * Sealed secrets of automatic rotations are never exported (they are not part of a record): a
 * successor restored inside its claim window cannot be claimed; rotate it again instead.
 */
const ms = z.number().int().nonnegative();
const keyId = z.string().regex(KEY_ID_PATTERN);
const recordSchema = z
  .object({
    id: keyId,
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    service: z.string().regex(LIMITS.serviceName),
    owner: z.string().max(LIMITS.ownerLength),
    name: z.string().max(LIMITS.nameLength),
    prefix: z.string().max(LIMITS.prefixLength),
    hint: z.string().max(64),
    scopes: z.array(z.string()).max(LIMITS.scopeCount),
    metadata: z.record(z.string(), z.string()),
    state: z.enum(KEY_STATES as [string, ...string[]]),
    createdAt: ms,
    updatedAt: ms,
    notBefore: ms.optional(),
    expiresAt: ms.optional(),
    revokedAt: ms.optional(),
    revokeReason: z.string().optional(),
    lastUsedAt: ms.optional(),
    usageCount: ms,
    policyId: z.string().regex(/^pol_[0-9A-HJKMNP-TV-Z]{26}$/).optional(),
    credits: ms.optional(),
    rotatedTo: keyId.optional(),
    rotatedFrom: keyId.optional(),
    rotatedAt: ms.optional(),
    graceEndsAt: ms.optional(),
    limitsId: keyId.optional(),
    dueAt: ms.optional(),
    expiryHandledAt: ms.optional(),
    rotationNoticeAt: ms.optional(),
    version: z.number().int().positive(),
  })
  .strict();

export async function* exportRecords(store: KeyStore, pageSize = 1000): AsyncGenerator<string> {
  let after: string | undefined;
  do {
    const page = await store.list({ limit: pageSize, after });
    for (const r of page.records) yield JSON.stringify(r);
    after = page.nextAfter;
  } while (after !== undefined);
}

export interface ImportResult {
  created: number;
  skipped: number;
}

export class BackupFormatError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'BackupFormatError';
  }
}

/**
 * Restores records. Every line is checked before anything is written, so a damaged file
 * changes nothing.
 */
export async function importRecords(store: KeyStore, lines: AsyncIterable<string> | Iterable<string>): Promise<ImportResult> {
  const records: KeyRecord[] = [];
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new BackupFormatError(n, 'not JSON');
    }
    const parsed = recordSchema.safeParse(json);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new BackupFormatError(n, `${i.path.join('.') || 'record'}: ${i.message}`);
    }
    records.push(parsed.data as KeyRecord);
  }
  const result: ImportResult = { created: 0, skipped: 0 };
  for (const r of records) {
    try {
      await store.create(r);
      result.created++;
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      result.skipped++;
    }
  }
  return result;
}
