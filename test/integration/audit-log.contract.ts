import type { AuditLog, NewAuditEntry } from '../../src/ports/audit-log';

/** One contract for every AuditLog adapter. `now` is the log's clock (ms) when it has one. */
export function describeAuditLogContract(name: string, make: () => Promise<{ log: AuditLog; cleanup(): Promise<void> }>): void {
  describe(`AuditLog contract: ${name}`, () => {
    let log: AuditLog;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ log, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    const entry = (over: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
      time: Date.now(),
      service: 'orders',
      keyId: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
      type: 'key.created',
      actor: 'root',
      detail: { event_id: 'evt_1' },
      ...over,
    });

    async function all(q: Partial<Parameters<AuditLog['list']>[0]> = {}, limit = 7) {
      const out = [];
      let before: string | undefined;
      do {
        const page = await log.list({ types: [], limit, ...q, before });
        out.push(...page.entries);
        before = page.nextBefore;
      } while (before !== undefined);
      return out;
    }

    it('lists newest first, every entry once across pages, with ids and details', async () => {
      for (let i = 0; i < 30; i++) await log.append([entry({ detail: { n: String(i) } })]);
      const got = await all();
      expect(got.map((e) => e.detail.n)).toEqual(Array.from({ length: 30 }, (_, i) => String(29 - i)));
      expect(new Set(got.map((e) => e.id)).size).toBe(30);
      expect(got[0]).toMatchObject({ service: 'orders', type: 'key.created', actor: 'root' });
    });

    it('appends a batch in one call, in order', async () => {
      await log.append([entry({ detail: { n: 'a' } }), entry({ detail: { n: 'b' } }), entry({ detail: { n: 'c' } })]);
      expect((await all()).map((e) => e.detail.n)).toEqual(['c', 'b', 'a']);
    });

    it('filters by service, key, type and time, alone and together', async () => {
      await log.append([
        entry({ service: 'orders', keyId: 'key_A', type: 'key.created' }),
        entry({ service: 'billing', keyId: 'key_B', type: 'key.created' }),
        entry({ service: 'orders', keyId: 'key_A', type: 'key.revoked' }),
        entry({ service: 'orders', keyId: 'key_C', type: 'validation.revoked' }),
      ]);
      expect((await all({ service: 'orders' })).map((e) => e.keyId)).toEqual(['key_C', 'key_A', 'key_A']);
      expect((await all({ service: 'billing' })).map((e) => e.keyId)).toEqual(['key_B']);
      expect((await all({ keyId: 'key_A' })).map((e) => e.type)).toEqual(['key.revoked', 'key.created']);
      expect((await all({ types: ['key.revoked', 'validation.revoked'] })).map((e) => e.keyId)).toEqual(['key_C', 'key_A']);
      expect(await all({ service: 'billing', types: ['key.revoked'] })).toEqual([]);
      const times = (await all()).map((e) => e.time);
      expect(await all({ from: Math.max(...times) + 60_000 })).toEqual([]);
      expect((await all({ to: Math.max(...times) + 60_000 })).length).toBe(4);
      expect(await all({ to: Math.min(...times) - 60_000 })).toEqual([]);
    });

    it('a page cursor stays valid while new entries arrive', async () => {
      for (let i = 0; i < 10; i++) await log.append([entry({ detail: { n: String(i) } })]);
      const first = await log.list({ types: [], limit: 4 });
      await log.append([entry({ detail: { n: 'new' } })]);
      const second = await log.list({ types: [], limit: 4, before: first.nextBefore });
      expect(second.entries.map((e) => e.detail.n)).toEqual(['5', '4', '3', '2']);
    });
  });
}
