import type { ServerHttp2Session } from 'node:http2';
import fc from 'fast-check';
import { StreamTable, streamTableUnsupported, useStreamTable } from '../../../src/transport/grpc/http2-stream-table';

interface Stream {
  name: string;
}
const s = (name: string): Stream => ({ name });

describe('StreamTable', () => {
  it('answers get, has, set, delete, size and clear as a Map does', () => {
    const t = new StreamTable<Stream>();
    const a = s('a');
    expect(t.size).toBe(0);
    expect(t.set(1, a)).toBe(t);
    t.set(3, s('b'));
    const b2 = s('b2');
    t.set(3, b2); // replacing does not count twice
    expect(t.size).toBe(2);
    expect(t.get(3)).toBe(b2);
    expect(t.get(1)).toBe(a);
    expect(t.has(1)).toBe(true);
    expect(t.get(5)).toBeUndefined();
    expect(t.has(5)).toBe(false);
    expect(t.delete(1)).toBe(true);
    expect(t.delete(1)).toBe(false);
    expect(t.size).toBe(1);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get(3)).toBeUndefined();
  });

  it('agrees with a Map over any sequence of set and delete (same size, lookups and contents)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 1, max: 2 ** 31 - 1 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 1, max: 64 }) }),
      fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 1, max: 64 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const table = new StreamTable<Stream>();
        const map = new Map<number, Stream>();
        for (const { kind, id } of ops) {
          if (kind === 'set') {
            const v = s(`v${id}`);
            table.set(id, v);
            map.set(id, v);
          } else {
            expect(table.delete(id)).toBe(map.delete(id));
          }
          expect(table.size).toBe(map.size);
          expect(table.get(id)).toBe(map.get(id));
          expect(table.has(id)).toBe(map.has(id));
        }
        const byId = (x: [number, Stream], y: [number, Stream]) => x[0] - y[0];
        expect([...table]).toEqual([...map].sort(byId));
        const visited: [number, Stream][] = [];
        table.forEach((v, id, self) => {
          expect(self).toBe(table);
          visited.push([id, v]);
        });
        expect(visited).toEqual([...map].sort(byId));
        expect([...table.keys()]).toEqual([...map.keys()].sort((x, y) => x - y));
        expect(new Set(table.values())).toEqual(new Set(map.values()));
      }),
    );
  });

  it('lets a callback delete entries while forEach runs, as a destroyed stream removes itself', () => {
    const t = new StreamTable<Stream>();
    for (let id = 1; id <= 9; id += 2) t.set(id, s(`s${id}`));
    const visited: string[] = [];
    t.forEach((v, id) => {
      visited.push(v.name);
      t.delete(id);
      t.delete(id + 2); // the next one is gone before its turn: not visited (as in a Map)
    });
    expect(visited).toEqual(['s1', 's5', 's9']);
    expect(t.size).toBe(0);
  });
});

describe('useStreamTable', () => {
  const kState = Symbol('state');
  const session = (state: unknown) => ({ [kState]: state }) as unknown as ServerHttp2Session;

  it("replaces an empty stream Map in the session's state", () => {
    const state = { streams: new Map(), other: 1 };
    expect(useStreamTable(session(state))).toBe(true);
    expect(state.streams).toBeInstanceOf(StreamTable);
    expect(state.other).toBe(1);
    expect(useStreamTable(session(state))).toBe(true); // already done
  });

  it('leaves sessions whose internals are not the expected ones unchanged', () => {
    const busy = new Map([[1, {}]]);
    const mapLike = { size: 0, get() {}, set() {}, delete() {}, forEach() {} };
    const cases: Record<string, unknown>[] = [{ streams: busy }, { streams: mapLike }, { streams: null }, {}];
    for (const state of cases) {
      const before = { ...state };
      expect(useStreamTable(session(state))).toBe(false);
      expect(state).toEqual(before);
      if ('streams' in before) expect(state.streams).toBe(before.streams);
    }
    expect(useStreamTable(session(undefined))).toBe(false);
    expect(useStreamTable({} as ServerHttp2Session)).toBe(false); // no state symbol at all
  });
});

describe('streamTableUnsupported', () => {
  it('allows only the Node majors whose node:http2 internals were checked', () => {
    expect(streamTableUnsupported('20.20.2')).toBeUndefined();
    expect(streamTableUnsupported('20.19.0')).toBeUndefined();
    expect(streamTableUnsupported('22.11.0')).toMatch(/not verified on Node 22\.11\.0 \(verified: 20\)/);
    expect(streamTableUnsupported('24.1.0')).toMatch(/Node 24\.1\.0/);
  });
});
