/**
 * The durable audit trail: every admin mutation, and every security-relevant validation
 * outcome (a revoked, expired or disabled key presented, a scope denied), with who did it.
 */
export interface AuditEntry {
  /** Assigned by the log: `<ms>-<seq>`, ordered by time (Redis stream id format). */
  readonly id: string;
  readonly time: number;
  readonly service: string;
  /** Empty when the entry concerns no single key. */
  readonly keyId: string;
  /** An event type (`key.revoked`) or a validation outcome (`validation.revoked`). */
  readonly type: string;
  /** `root`, an admin key id, `keyward`, or for validations the key that was presented. */
  readonly actor: string;
  /** Small string map: reason, changed fields, client IP, missing scope... never a secret. */
  readonly detail: Readonly<Record<string, string>>;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface AuditQuery {
  /** Only this service's entries; undefined for all services. */
  readonly service?: string;
  readonly keyId?: string;
  /** Only these types; empty for all. */
  readonly types: readonly string[];
  /** Inclusive time range, milliseconds. */
  readonly from?: number;
  readonly to?: number;
  readonly limit: number;
  /** Only entries older than this id (the last id of the previous page). */
  readonly before?: string;
}

export interface AuditPage {
  /** Newest first. */
  readonly entries: AuditEntry[];
  /** Set when older entries may match; pass it as `before`. */
  readonly nextBefore?: string;
}

export interface AuditAppendOptions {
  /**
   * Idempotent append: one id per entry (e.g. its event id); an entry whose id was appended in
   * the last few days is skipped, so a re-run after a crash records each entry once.
   */
  readonly dedupeIds?: readonly string[];
}

export interface AuditLog {
  /** Appends entries (one round trip for the batch); keeps them for the configured retention. */
  append(entries: readonly NewAuditEntry[], opts?: AuditAppendOptions): Promise<void>;
  list(query: AuditQuery): Promise<AuditPage>;
  close(): Promise<void>;
}
