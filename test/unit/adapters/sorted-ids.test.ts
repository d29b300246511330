import fc from 'fast-check';
import { SortedIds } from '../../../src/adapters/store/sorted-ids';

/** Reference model: a plain sorted array of unique ids. */
class Model {
  ids: string[] = [];
  add(id: string): void {
    if (!this.ids.includes(id)) this.ids = [...this.ids, id].sort();
  }
  remove(id: string): void {
    this.ids = this.ids.filter((x) => x !== id);
  }
  after(a: string | undefined): string[] {
    return a === undefined ? [...this.ids] : this.ids.filter((x) => x > a);
  }
}

const idArb = fc.string({ unit: fc.constantFrom('0', '5', 'A', 'Z', 'a'), minLength: 0, maxLength: 3 });
const opArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('add' as const), id: idArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), id: idArb }) },
);

describe('SortedIds', () => {
  it('starts empty', () => {
    const s = new SortedIds();
    expect(s.size).toBe(0);
    expect([...s.after(undefined)]).toEqual([]);
    expect([...s.after('x')]).toEqual([]);
  });

  it('keeps ids sorted and unique whatever the insertion order', () => {
    const s = new SortedIds();
    for (const id of ['m', 'c', 'x', 'c', 'a', 'x', 'z', 'b']) s.add(id);
    expect([...s.after(undefined)]).toEqual(['a', 'b', 'c', 'm', 'x', 'z']);
    expect(s.size).toBe(6);
  });

  it('after() is strictly greater than the cursor, whether or not the cursor is present', () => {
    const s = new SortedIds();
    for (const id of ['b', 'd', 'f']) s.add(id);
    expect([...s.after('b')]).toEqual(['d', 'f']);
    expect([...s.after('c')]).toEqual(['d', 'f']);
    expect([...s.after('a')]).toEqual(['b', 'd', 'f']);
    expect([...s.after('f')]).toEqual([]);
    expect([...s.after('')]).toEqual(['b', 'd', 'f']);
    expect([...s.after('zzz')]).toEqual([]);
  });

  it('removes present ids and ignores absent ones', () => {
    const s = new SortedIds();
    for (const id of ['a', 'b', 'c']) s.add(id);
    s.remove('b');
    s.remove('q');
    s.remove('');
    expect([...s.after(undefined)]).toEqual(['a', 'c']);
    expect(s.size).toBe(2);
    s.remove('a');
    s.remove('c');
    expect(s.size).toBe(0);
  });

  it('appending the same last id twice does not duplicate it', () => {
    const s = new SortedIds();
    s.add('a');
    s.add('a');
    expect(s.size).toBe(1);
  });

  it('after() is lazy: it can stop early on a large set', () => {
    const s = new SortedIds();
    for (let i = 0; i < 10_000; i++) s.add(String(i).padStart(5, '0'));
    const it = s.after('04999');
    expect(it.next().value).toBe('05000');
    expect(it.next().value).toBe('05001');
  });

  it('property: behaves like a sorted unique array for any sequence of adds and removes', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), fc.array(fc.option(idArb, { nil: undefined }), { maxLength: 5 }), (ops, cursors) => {
        const s = new SortedIds();
        const m = new Model();
        for (const { op, id } of ops) {
          s[op](id);
          m[op](id);
          expect(s.size).toBe(m.ids.length);
        }
        expect([...s.after(undefined)]).toEqual(m.ids);
        for (const c of cursors) expect([...s.after(c)]).toEqual(m.after(c));
        for (const id of m.ids) expect([...s.after(id)]).toEqual(m.after(id));
      }),
      { numRuns: 500 },
    );
  });

  it('property: paging by the last id visits every id exactly once', () => {
    fc.assert(
      fc.property(fc.uniqueArray(idArb, { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), (ids, pageSize) => {
        const s = new SortedIds();
        for (const id of ids) s.add(id);
        const seen: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page: string[] = [];
          for (const id of s.after(cursor)) {
            if (page.length === pageSize) break;
            page.push(id);
          }
          if (page.length === 0) break;
          seen.push(...page);
          cursor = page[page.length - 1];
        }
        expect(seen).toEqual([...ids].sort());
      }),
      { numRuns: 300 },
    );
  });
});
