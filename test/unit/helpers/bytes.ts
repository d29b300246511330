/** Deterministic byte sources for injecting into generateKey / randomBase62 / KeyIdGenerator. */

/** mulberry32: a tiny seeded PRNG; every call to the returned function continues the stream. */
export function seededBytes(seed: number): (n: number) => Uint8Array {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = next() & 0xff;
    return out;
  };
}

/** Bytes 0, 1, ..., 255, 0, 1, ... across calls; records every requested size. */
export function cyclingBytes(): { bytes: (n: number) => Uint8Array; requests: number[] } {
  let i = 0;
  const requests: number[] = [];
  return {
    requests,
    bytes: (n: number) => {
      requests.push(n);
      const out = new Uint8Array(n);
      for (let k = 0; k < n; k++) out[k] = i++ & 0xff;
      return out;
    },
  };
}

/** Always the same bytes, repeated as needed. */
export function constantBytes(pattern: readonly number[]): (n: number) => Uint8Array {
  return (n: number) => Uint8Array.from({ length: n }, (_, k) => pattern[k % pattern.length]);
}

/** The given bytes in order, continuing across calls; throws when they run out. */
export function sequenceBytes(values: readonly number[]): (n: number) => Uint8Array {
  let i = 0;
  return (n: number) => {
    if (i >= values.length) throw new Error('byte sequence exhausted');
    const out = Uint8Array.from(values.slice(i, i + n));
    i += out.length;
    return out;
  };
}
