/**
 * A sorted array of ids with binary search. Ids are time-ordered, so inserts are almost always
 * appends; lookups of a page after a cursor cost O(log n + page).
 */
export class SortedIds {
  private readonly ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  add(id: string): void {
    const n = this.ids.length;
    if (n === 0 || this.ids[n - 1] < id) {
      this.ids.push(id);
      return;
    }
    const i = this.lowerBound(id);
    if (this.ids[i] !== id) this.ids.splice(i, 0, id);
  }

  remove(id: string): void {
    const i = this.lowerBound(id);
    if (this.ids[i] === id) this.ids.splice(i, 1);
  }

  /** Ids strictly greater than `after`, in order, lazily. */
  *after(after: string | undefined): IterableIterator<string> {
    let i = after === undefined ? 0 : this.upperBound(after);
    while (i < this.ids.length) yield this.ids[i++];
  }

  private lowerBound(id: string): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ids[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private upperBound(id: string): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ids[mid] <= id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
