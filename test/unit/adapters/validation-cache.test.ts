import { ValidationCache } from '../../../src/adapters/cache/validation-cache';
import { ManualClock } from '../../../src/domain/clock';
import { StoreUnavailableError } from '../../../src/domain/errors';
import type { KeyRecord } from '../../../src/domain/key-record';
import { CACHED_RECORD_FIELDS, type ValidationEntry } from '../../../src/domain/validation';
import { MISS } from '../../../src/ports/validation-source';
import { context, trace } from '@opentelemetry/api';
import { startTestTracing } from '../observability/tracing-harness';

function record(hash: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: `key_${hash.padEnd(26, '0').slice(0, 26).toUpperCase()}`,
    hash,
    service: 'orders',
    owner: '',
    name: '',
    prefix: 'sk',
    hint: 'sk_abcd',
    scopes: ['orders:*'],
    metadata: {},
    state: 'active',
    createdAt: 0,
    updatedAt: 0,
    usageCount: 0,
    version: 1,
    ...over,
  };
}

/** A store double whose answers the test controls: resolve, reject, or hold. */
class FakeLoader {
  calls: string[] = [];
  records = new Map<string, KeyRecord>();
  failing = false;
  held: { hash: string; release: () => void }[] = [];
  hold = false;

  load = (hash: string): Promise<KeyRecord | undefined> => {
    this.calls.push(hash);
    const snapshot = this.records.get(hash); // what the store held when the read reached it
    const answer = () => {
      if (this.failing) throw new Error('connection refused');
      return snapshot;
    };
    if (!this.hold) return Promise.resolve().then(answer);
    return new Promise((resolve, reject) => {
      this.held.push({
        hash,
        release: () => {
          try {
            resolve(answer());
          } catch (e) {
            reject(e);
          }
        },
      });
    });
  };
}

function setup(over: Partial<ConstructorParameters<typeof ValidationCache>[0]> = {}) {
  const clock = new ManualClock(1_000_000);
  const loader = new FakeLoader();
  const cache = new ValidationCache({
    load: loader.load,
    clock,
    maxEntries: 100,
    ttlMs: 10_000,
    negativeTtlMs: 2_000,
    maxStalenessMs: 60_000,
    ...over,
  });
  return { clock, loader, cache };
}

describe('ValidationCache', () => {
  test('a miss reads the store once; a fresh hit answers synchronously without a read', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    const first = cache.lookup('h1');
    expect(first).toBeInstanceOf(Promise);
    expect((await first)?.record.id).toBe(record('h1').id);
    const second = cache.lookup('h1');
    expect(second).not.toBeInstanceOf(Promise);
    expect((second as ValidationEntry).record.id).toBe(record('h1').id);
    expect(loader.calls).toEqual(['h1']);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 });
  });

  test('concurrent misses for one key share one store read', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    loader.hold = true;
    const waiting = Array.from({ length: 50 }, () => cache.lookup('h1'));
    expect(loader.calls).toHaveLength(1);
    loader.held[0].release();
    const answers = await Promise.all(waiting);
    expect(answers.every((a) => a?.record.id === record('h1').id)).toBe(true);
    expect(loader.calls).toHaveLength(1);
  });

  test('positive entries expire after the TTL, negative ones after the negative TTL', async () => {
    const { clock, loader, cache } = setup();
    loader.records.set('known', record('known'));
    await cache.lookup('known');
    expect(await cache.lookup('unknown')).toBeUndefined();
    clock.advance(1_999);
    cache.lookup('known');
    cache.lookup('unknown');
    expect(loader.calls).toEqual(['known', 'unknown']);
    clock.advance(1); // negative TTL over
    await cache.lookup('unknown');
    expect(loader.calls).toEqual(['known', 'unknown', 'unknown']);
    clock.advance(8_000); // positive TTL over
    await cache.lookup('known');
    expect(loader.calls).toEqual(['known', 'unknown', 'unknown', 'known']);
  });

  test('when the store fails, a found key is served stale up to the maximum staleness', async () => {
    const onStaleServed = jest.fn();
    const { clock, loader, cache } = setup({ onStaleServed });
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    loader.failing = true;
    clock.advance(10_000 + 59_999); // past the TTL, inside the staleness bound
    expect((await cache.lookup('h1'))?.record.id).toBe(record('h1').id);
    expect(onStaleServed).toHaveBeenCalledWith('h1');
    expect(cache.stats.staleServed).toBe(1);
    clock.advance(1); // bound reached
    await expect(cache.lookup('h1')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('unknown keys fail closed when the store fails, even if remembered as unknown before', async () => {
    const { clock, loader, cache } = setup();
    expect(await cache.lookup('nope')).toBeUndefined();
    loader.failing = true;
    clock.advance(2_000);
    await expect(cache.lookup('nope')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(cache.lookup('never-seen')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('invalidation drops an entry, and a read started before it cannot put the old record back', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    loader.hold = true;
    const before = cache.lookup('h1');
    cache.invalidate('h1'); // e.g. revoked meanwhile
    loader.records.set('h1', record('h1', { state: 'revoked' }));
    loader.held[0].release();
    expect((await before)?.record.state).toBe('active'); // that caller raced the revoke
    loader.hold = false;
    expect((await cache.lookup('h1'))?.record.state).toBe('revoked'); // but it was not cached
    expect(loader.calls).toHaveLength(2);
  });

  test('put replaces an entry with a known-current record', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    cache.put(record('h1', { state: 'disabled' }));
    expect((cache.lookup('h1') as ValidationEntry).record.state).toBe('disabled');
    expect(loader.calls).toHaveLength(1);
  });

  test('an invalidated key is not served stale during an outage', async () => {
    const { clock, loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    cache.invalidate('h1');
    loader.failing = true;
    clock.advance(1);
    await expect(cache.lookup('h1')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('size is bounded; the least recently used entry goes first', async () => {
    const { loader, cache } = setup({ maxEntries: 3 });
    for (const h of ['a', 'b', 'c']) {
      loader.records.set(h, record(h));
      await cache.lookup(h);
    }
    cache.lookup('a'); // a is now most recent
    loader.records.set('d', record('d'));
    await cache.lookup('d');
    expect(cache.size).toBe(3);
    expect(cache.stats.evictions).toBe(1);
    loader.calls = [];
    cache.lookup('a');
    cache.lookup('c');
    expect(loader.calls).toEqual([]);
    await cache.lookup('b');
    expect(loader.calls).toEqual(['b']);
  });
});

describe('ValidationCache invalidation by key id', () => {
  test('an event naming a key id evicts that key, and only it', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    loader.records.set('h2', record('h2'));
    await cache.lookup('h1');
    await cache.lookup('h2');
    cache.invalidateId(record('h1').id);
    expect(cache.lookup('h1')).toBeInstanceOf(Promise);
    expect(cache.lookup('h2')).not.toBeInstanceOf(Promise);
    cache.invalidateId('key_UNKNOWN'); // not cached: nothing happens
  });

  test('the id index follows LRU evictions', async () => {
    const { loader, cache } = setup({ maxEntries: 1 });
    loader.records.set('h1', record('h1'));
    loader.records.set('h2', record('h2'));
    await cache.lookup('h1');
    await cache.lookup('h2'); // evicts h1
    cache.invalidateId(record('h1').id); // must not touch h2
    expect(cache.lookup('h2')).not.toBeInstanceOf(Promise);
  });
});

describe('ValidationCache.peek', () => {
  test('answers a fresh entry that a lookup was asked for, counted as a hit, without a read', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    expect(cache.peek('h1')).toBe(MISS); // never looked up
    expect(cache.stats).toMatchObject({ hits: 0, misses: 0 });
    await cache.lookup('h1');
    const hit = cache.peek('h1');
    expect(hit).not.toBe(MISS);
    expect((hit as ValidationEntry).record.id).toBe(record('h1').id);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 });
    expect(loader.calls).toEqual(['h1']);
  });

  test('answers a remembered unknown key as undefined, like lookup', async () => {
    const { cache } = setup();
    expect(await cache.lookup('unknown')).toBeUndefined();
    expect(cache.peek('unknown')).toBeUndefined();
  });

  test('misses once the entry is no longer fresh (lookup then reads the store)', async () => {
    const { clock, loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    clock.advance(10_000);
    expect(cache.peek('h1')).toBe(MISS);
    expect(cache.stats.hits).toBe(0);
    expect(cache.lookup('h1')).toBeInstanceOf(Promise);
  });

  test('misses for a record put by an admin write until a lookup has found it', () => {
    const { cache } = setup();
    cache.put(record('h1'));
    expect(cache.peek('h1')).toBe(MISS);
    expect(cache.lookup('h1')).not.toBeInstanceOf(Promise); // the put record, fresh
    expect(cache.peek('h1')).not.toBe(MISS);
  });

  test('misses after an invalidation or a clear', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    cache.invalidate('h1');
    expect(cache.peek('h1')).toBe(MISS);
    await cache.lookup('h1');
    cache.clear();
    expect(cache.peek('h1')).toBe(MISS);
  });

  test('answers hits while tracing is on too, annotating the active span as lookup does', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1'));
    await cache.lookup('h1');
    const t = startTestTracing();
    try {
      const span = trace.getTracer('test').startSpan('call');
      const hit = context.with(trace.setSpan(context.active(), span), () => cache.peek('h1'));
      span.end();
      expect(hit).not.toBe(MISS);
      expect(t.spans()[0].attributes).toEqual({ 'keyward.cache.result': 'hit', 'keyward.key.id': (hit as ValidationEntry).record.id });
    } finally {
      await t.stop();
    }
  });
});

describe('ValidationCache memory (slim records, shared scopes)', () => {
  test('keeps only the fields validation reads, with the same values', async () => {
    const { loader, cache } = setup();
    const full = record('h1', { name: 'checkout', expiresAt: 5_000_000, policyId: 'pol_1', credits: 7, lastUsedAt: 9, usageCount: 3, version: 4 });
    loader.records.set('h1', full);
    const entry = (await cache.lookup('h1'))!;
    const expected = Object.fromEntries(CACHED_RECORD_FIELDS.filter((f) => full[f] !== undefined).map((f) => [f, full[f]]));
    expect(entry.record).toEqual(expected);
    for (const dropped of ['hash', 'name', 'prefix', 'updatedAt', 'usageCount', 'version', 'lastUsedAt']) expect(entry.record).not.toHaveProperty(dropped);
  });

  test('keys that grant the same scopes share one frozen list and one ScopeSet; others do not', async () => {
    const { loader, cache } = setup();
    loader.records.set('h1', record('h1', { scopes: ['a', 'b:*'] }));
    loader.records.set('h2', record('h2', { scopes: ['a', 'b:*'] }));
    loader.records.set('h3', record('h3', { scopes: ['a'] }));
    const [e1, e2, e3] = await Promise.all(['h1', 'h2', 'h3'].map((h) => cache.lookup(h)));
    expect(e1!.record.scopes).toBe(e2!.record.scopes);
    expect(e1!.scopes).toBe(e2!.scopes);
    expect(Object.isFrozen(e1!.record.scopes)).toBe(true);
    expect(e3!.scopes).not.toBe(e1!.scopes);
    expect(e1!.record.scopes).toEqual(['a', 'b:*']);
    expect(e3!.scopes.firstMissing(['b:x'])).toBe('b:x');
    expect(e1!.scopes.firstMissing(['b:x'])).toBeUndefined();
  });

  test('a put record is slim too', () => {
    const { cache } = setup();
    cache.put(record('h1', { name: 'n' }));
    const entry = cache.lookup('h1') as ValidationEntry;
    expect(entry.record).not.toHaveProperty('name');
    expect(entry.record.id).toBe(record('h1').id);
  });
});
