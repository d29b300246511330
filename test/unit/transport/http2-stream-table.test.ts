import type { ServerHttp2Session } from 'node:http2';
import { StreamTable, useStreamTable } from '../../../src/transport/grpc/http2-stream-table';

describe('StreamTable', () => {
  it('answers get, has, set, delete and size as a Map does', () => {
    const t = new StreamTable<string>();
    expect(t.size).toBe(0);
    expect(t.set(1, 'a')).toBe(t);
    t.set(3, 'b');
    t.set(3, 'b2'); // replacing does not count twice
    expect(t.size).toBe(2);
    expect(t.get(3)).toBe('b2');
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

  it('visits streams in the order they were opened (ids only grow), also through the iterators', () => {
    const t = new StreamTable<string>();
    for (const id of [1, 3, 5, 7, 9, 11, 101, 1001]) t.set(id, `s${id}`);
    t.delete(5);
    const seen: [number, string][] = [];
    t.forEach((v, id, table) => {
      expect(table).toBe(t);
      seen.push([id, v]);
    });
    expect(seen).toEqual([[1, 's1'], [3, 's3'], [7, 's7'], [9, 's9'], [11, 's11'], [101, 's101'], [1001, 's1001']]);
    expect([...t]).toEqual(seen);
    expect([...t.keys()]).toEqual(seen.map(([id]) => id));
    expect([...t.values()]).toEqual(seen.map(([, v]) => v));
  });

  it('lets a callback delete entries while forEach runs (a destroyed stream removes itself)', () => {
    const t = new StreamTable<number>();
    for (let id = 1; id <= 9; id += 2) t.set(id, id);
    const visited: number[] = [];
    t.forEach((v, id) => {
      visited.push(v);
      t.delete(id);
      t.delete(id + 2); // the next one is gone before its turn: not visited
    });
    expect(visited).toEqual([1, 5, 9]);
    expect(t.size).toBe(0);
  });
});

describe('useStreamTable', () => {
  const kState = Symbol('state');
  const session = (state: unknown) => ({ [kState]: state }) as unknown as ServerHttp2Session;

  it("replaces an empty Map-like `streams` in the session's state", () => {
    const state = { streams: new Map(), other: 1 };
    expect(useStreamTable(session(state))).toBe(true);
    expect(state.streams).toBeInstanceOf(StreamTable);
    expect(state.other).toBe(1);
    expect(useStreamTable(session(state))).toBe(true); // already done
  });

  it('leaves sessions whose internals are not the expected ones unchanged', () => {
    const busy = new Map([[1, {}]]);
    const cases: unknown[] = [{ streams: busy }, { streams: { size: 0, get() {} } }, { streams: null }, {}, undefined];
    for (const state of cases) {
      const before = state && typeof state === 'object' ? { ...state } : state;
      expect(useStreamTable(session(state))).toBe(false);
      expect(state && typeof state === 'object' ? { ...state } : state).toEqual(before);
    }
    expect(useStreamTable({} as ServerHttp2Session)).toBe(false); // no state symbol at all
  });
});
