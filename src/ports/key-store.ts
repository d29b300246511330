import { ResourceExhaustedError } from '../domain/errors';
import type { KeyRecord, KeyState } from '../domain/key-record';

/** Options of writes that can make a key active. */
export interface WriteOptions {
  /**
   * Service quota: refuse (`ResourceExhaustedError`) to make the key active when its service
   * already has this many active keys. Checked atomically with the write, so concurrent creates
   * on several sidecars cannot exceed it. Undefined or 0: no quota.
   */
  readonly maxActiveKeys?: number;
  /**
   * Fencing: write only while this lease value is current (see ports/lease.ts). The lifecycle
   * scheduler passes it so a scheduler that lost its lease (a long pause) cannot act after
   * another took over. A stale fence is `FencedError`, and nothing is written.
   */
  readonly fence?: Fence;
}

/** A lease holding as a store can check it: the lease's name and the value it holds. */
export interface Fence {
  readonly lease: string;
  readonly value: string;
}

/**
 * A successor's secret sealed by a `SecretSealer` (AES-256-GCM under a key-encryption key that
 * is never stored), kept by the store until claimed once or until `expiresAt`.
 */
export interface SealedSecret {
  /** Opaque to the store: the sealer's serialised form. */
  readonly sealed: string;
  /** Milliseconds since the epoch; the store destroys it then (Redis: PEXPIREAT). */
  readonly expiresAt: number;
}

/** The two writes of a rotation, done atomically by `KeyStore.rotate`. */
export interface RotationWrite {
  /** The old key, superseded; replaces the stored record whose version is `expectedVersion`. */
  readonly retired: KeyRecord;
  readonly expectedVersion: number;
  /** The new key, inserted. */
  readonly successor: KeyRecord;
  /** Kept for `takeSealedSecret(successor.id)` (automatic rotation only). */
  readonly sealed?: SealedSecret;
}

export function quotaExceeded(service: string, max: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`service ${service} has reached its quota of ${max} active keys (rule max_active_keys)`);
}

/** Filters and position of one page of `KeyStore.list`. Pages are ordered by key id (= creation time). */
export interface ListQuery {
  /** Only this service's keys; undefined lists all services. */
  readonly service?: string;
  readonly owner?: string;
  readonly state?: KeyState;
  /** Maximum records to return; a positive integer. */
  readonly limit: number;
  /** Return only ids strictly greater than this one (the last id of the previous page). */
  readonly after?: string;
}

export interface ListPage {
  readonly records: KeyRecord[];
  /** Set when more records may follow; pass it as `after` for the next page. */
  readonly nextAfter?: string;
}

/** Usage aggregated in a sidecar between flushes; applied as increments so sidecars add up. */
export interface UsageDelta {
  readonly keyId: string;
  readonly count: number;
  readonly lastUsedAt: number;
}

/**
 * The store of record for keys. Implemented by the embedded memory store and by Redis; both
 * pass the same contract suite (test/integration/key-store.contract.ts).
 *
 * Every method either completes fully or changes nothing. Infrastructure failures are
 * `StoreUnavailableError`; the other errors are the named ones documented per method.
 */
export interface KeyStore {
  /** Inserts a record. `AlreadyExistsError` when its id or hash is taken. */
  create(record: KeyRecord, opts?: WriteOptions): Promise<void>;
  getById(id: string): Promise<KeyRecord | undefined>;
  getByHash(hash: string): Promise<KeyRecord | undefined>;
  /**
   * Replaces a record whose stored `version` equals `expectedVersion` (compare-and-set).
   * `ConflictError` when another write came first; `NotFoundError` when the record is gone.
   * Usage fields of `record` are ignored: usage only moves through `addUsage`. `id` and `hash`
   * never change (a RangeError otherwise).
   */
  replace(record: KeyRecord, expectedVersion: number, opts?: WriteOptions): Promise<void>;
  /** Removes a record, its index entries and any sealed secret; returns what was removed, if anything. */
  delete(id: string): Promise<KeyRecord | undefined>;
  /** One page, in id order, costing O(log n + page) whatever the number of keys. */
  list(query: ListQuery): Promise<ListPage>;
  /**
   * Adds usage counts and advances last-used times (never moves them back). `batchId` makes
   * the call idempotent: a batch whose id was applied in the last 24 hours is ignored, so a
   * retry after an unknown outcome (a timeout) cannot count twice.
   */
  addUsage(deltas: readonly UsageDelta[], batchId: string): Promise<void>;
  /**
   * Rotation, atomically: the old record is replaced (compare-and-set, `ConflictError` /
   * `NotFoundError` as `replace`) and the successor inserted (`AlreadyExistsError` as `create`),
   * with the sealed secret if any; all or nothing. No quota applies (one key replaces another).
   */
  rotate(write: RotationWrite, opts?: Pick<WriteOptions, 'fence'>): Promise<void>;
  /**
   * Ids of the records whose `dueAt` is at or before `now`, earliest first, at most `limit`:
   * O(log n + limit) whatever the number of keys (an index by due time).
   */
  due(now: number, limit: number): Promise<string[]>;
  /**
   * Removes and returns the sealed secret of a key, at most once: undefined when it was never
   * sealed, was already taken, or expired. Atomic, so two concurrent claims cannot both get it.
   */
  takeSealedSecret(keyId: string): Promise<SealedSecret | undefined>;
  /**
   * Reads the sealed secret of a key without removing it (undefined as for `takeSealedSecret`),
   * so a claim can check it opens before `takeSealedSecret` destroys it.
   */
  readSealedSecret(keyId: string): Promise<SealedSecret | undefined>;
  /** Resolves when the store answers; rejects with `StoreUnavailableError` otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
