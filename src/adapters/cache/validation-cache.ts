import type { Span } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../domain/clock';
import { StoreUnavailableError } from '../../domain/errors';
import type { KeyRecord } from '../../domain/key-record';
import { toCachedEntry, type ValidationEntry } from '../../domain/validation';
import { recordingActiveSpan, tracingEnabled, withSpan } from '../../observability/span-helpers';
import { MISS, type ValidationSource } from '../../ports/validation-source';

export interface ValidationCacheOptions {
  /** Reads one record by key hash from the store of record. */
  load: (hash: string) => Promise<KeyRecord | undefined>;
  clock: Clock;
  /** Most entries kept; the least recently used go first. */
  maxEntries: number;
  /** How long a found key is answered from memory before the store is asked again. */
  ttlMs: number;
  /** How long an unknown key is remembered as unknown (guards the store against floods of bad keys). */
  negativeTtlMs: number;
  /**
   * How long past its TTL a found key may still be answered when the store cannot be reached.
   * Beyond it, and for keys never seen, validation fails closed with `StoreUnavailableError`.
   */
  maxStalenessMs: number;
  /** Told when a stale entry was served because the store failed. */
  onStaleServed?: (hash: string) => void;
}

interface Item {
  /** undefined: the store said there is no such key. */
  readonly entry: ValidationEntry | undefined;
  readonly freshUntil: number;
  /** After this the item may not be served at all (fresh + maximum staleness for found keys). */
  readonly usableUntil: number;
  /**
   * `lookup` was asked for this hash (so its key is well-formed): `peek` may answer it. False
   * for a record `put` by an admin write until a lookup finds it.
   */
  looked: boolean;
}

export interface CacheStats {
  hits: number;
  misses: number;
  staleServed: number;
  evictions: number;
}

/**
 * The sidecar's in-process cache of validation records, keyed by key hash. A fresh hit answers
 * synchronously (no promise on the hot path). Concurrent misses for one hash share one store
 * read. A change to a key (local write or, later, an event from another sidecar) invalidates
 * its entry, and a read that started before the invalidation is not allowed to put the old
 * record back.
 */
export class ValidationCache implements ValidationSource {
  private readonly lru: LRUCache<string, Item>;
  private readonly inflight = new Map<string, Promise<ValidationEntry | undefined>>();
  /** Key id -> hash of the cached found keys, so events (which carry ids) can evict. */
  private readonly hashById = new Map<string, string>();
  private readonly opts: ValidationCacheOptions;
  readonly stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, evictions: 0 };

  constructor(opts: ValidationCacheOptions) {
    this.opts = opts;
    this.lru = new LRUCache<string, Item>({
      max: opts.maxEntries,
      dispose: (item, hash, reason) => {
        if (reason === 'evict') this.stats.evictions++;
        const id = item.entry?.record.id;
        if (id !== undefined && this.hashById.get(id) === hash) this.hashById.delete(id);
      },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  lookup(hash: string): ValidationEntry | undefined | Promise<ValidationEntry | undefined> {
    const item = this.lru.get(hash);
    if (item !== undefined && this.opts.clock.now() < item.freshUntil) {
      this.stats.hits++;
      item.looked = true;
      // tracing: a hit is an attribute of the caller's span, a miss a span of its own (below)
      if (tracingEnabled()) annotate(recordingActiveSpan(), 'hit', item.entry);
      return item.entry;
    }
    this.stats.misses++;
    const joined = this.inflight.get(hash);
    if (joined !== undefined) {
      if (tracingEnabled()) annotate(recordingActiveSpan(), 'coalesced', undefined);
      return joined;
    }
    if (!tracingEnabled()) return this.fetch(hash, item);
    return withSpan('keyward.cache.lookup', undefined, (span) => {
      annotate(span, 'miss', undefined);
      return this.fetch(hash, item);
    });
  }

  /**
   * A fresh hit for a hash `lookup` was asked for, counted (and, when traced, annotated) as a
   * hit like `lookup` does; `MISS` otherwise.
   */
  peek(hash: string): ValidationEntry | undefined | typeof MISS {
    const item = this.lru.get(hash);
    if (item === undefined || !item.looked || this.opts.clock.now() >= item.freshUntil) return MISS;
    this.stats.hits++;
    if (tracingEnabled()) annotate(recordingActiveSpan(), 'hit', item.entry);
    return item.entry;
  }

  /** Drops a key's entry; an in-flight read for it will not be cached. */
  invalidate(hash: string): void {
    this.lru.delete(hash);
    this.inflight.delete(hash);
  }

  /** Drops the entry of a key known by id (a change event from another sidecar). */
  invalidateId(keyId: string): void {
    const hash = this.hashById.get(keyId);
    if (hash !== undefined) this.invalidate(hash);
  }

  /** Replaces a key's entry with a record known to be current (e.g. just written by this sidecar). */
  put(record: KeyRecord): void {
    this.inflight.delete(record.hash);
    this.store(record.hash, toCachedEntry(record), false);
  }

  clear(): void {
    this.lru.clear();
    this.inflight.clear();
    this.hashById.clear();
  }

  private fetch(hash: string, previous: Item | undefined): Promise<ValidationEntry | undefined> {
    const promise = withSpan('keyward.store.read', undefined, () => this.opts.load(hash)).then(
      (record) => {
        const entry = record && toCachedEntry(record);
        if (this.inflight.get(hash) === promise) {
          this.inflight.delete(hash);
          this.store(hash, entry, true);
        }
        return entry;
      },
      (err: unknown) => {
        if (this.inflight.get(hash) === promise) this.inflight.delete(hash);
        const now = this.opts.clock.now();
        // Serve a found key up to the maximum staleness; unknown keys fail closed.
        if (previous?.entry !== undefined && now < previous.usableUntil && this.lru.has(hash)) {
          this.stats.staleServed++;
          this.opts.onStaleServed?.(hash);
          return previous.entry;
        }
        throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError('key store unreachable', { cause: err });
      },
    );
    this.inflight.set(hash, promise);
    return promise;
  }

  private store(hash: string, entry: ValidationEntry | undefined, looked: boolean): void {
    const now = this.opts.clock.now();
    const ttl = entry ? this.opts.ttlMs : this.opts.negativeTtlMs;
    const usableUntil = entry ? now + ttl + this.opts.maxStalenessMs : now + ttl;
    this.lru.set(hash, { entry, freshUntil: now + ttl, usableUntil, looked });
    if (entry) this.hashById.set(entry.record.id, hash);
  }
}

function annotate(span: Span | undefined, result: 'hit' | 'miss' | 'coalesced', entry: ValidationEntry | undefined): void {
  if (span === undefined) return;
  span.setAttribute('keyward.cache.result', result);
  if (entry !== undefined) span.setAttribute('keyward.key.id', entry.record.id);
}
