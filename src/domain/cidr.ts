import { InvalidArgumentError } from './errors';

/**
 * IP ranges (CIDR) and a prepared set for fast client-address checks.
 *
 * Syntax (no surrounding or inner whitespace is accepted; nothing is trimmed):
 * - IPv4 `a.b.c.d/n`, n 0 to 32. Octets are decimal 0 to 255 without leading zeros (`010.0.0.1` is
 *   refused: other parsers read it as octal), the same as `node:net` `isIP`.
 * - IPv6 `x:x:x:x:x:x:x:x/n`, n 0 to 128: 1 to 4 hex digits per group (either case), one `::` for
 *   one or more zero groups, an optional dotted IPv4 tail for the last 32 bits (`64:ff9b::1.2.3.4`).
 *   Zone ids (`%eth0`) are refused in ranges.
 * - The prefix is decimal without leading zeros or sign (`/0`, `/24`; not `/024`, `/+8`).
 * - A bare address means one address: `/32` for IPv4, `/128` for IPv6.
 *
 * Host bits: a range whose address has bits set after the prefix (`10.1.2.3/8`) is accepted and
 * normalised by masking (`10.0.0.0/8`): the range it names is unambiguous, and refusing it would
 * only turn a harmless spelling into an error. `checkCidrs` returns the normalised text.
 *
 * IPv4-mapped IPv6 (`::ffff:0:0/96`): an address in that block IS the IPv4 address in its low 32
 * bits (dual-stack sockets report IPv4 peers as `::ffff:1.2.3.4`), everywhere:
 * - a client `::ffff:10.1.2.3` (or `::ffff:a01:203`) is the IPv4 client `10.1.2.3`;
 * - a range written in the mapped block with prefix 96 or more is the IPv4 range with prefix
 *   n - 96: `::ffff:10.0.0.0/104` is `10.0.0.0/8`, `::ffff:0:0/96` is `0.0.0.0/0`;
 * - IPv4 clients (however written) are matched by IPv4 ranges only; IPv6 ranges match IPv6 clients
 *   outside the mapped block only. So `::/0` means "every IPv6 client" and does not admit IPv4
 *   clients, and `0.0.0.0/0` admits every IPv4 client, including `::ffff:1.2.3.4`. Other embeddings
 *   (IPv4-compatible `::1.2.3.4`, NAT64 `64:ff9b::/96`) are plain IPv6.
 */

export type IpFamily = 4 | 6;

/** A parsed, normalised range. */
export interface Cidr {
  readonly family: IpFamily;
  /** The network address (host bits cleared): dotted quad, or RFC 5952 text for IPv6. */
  readonly address: string;
  /** 0 to 32 (IPv4) or 0 to 128 (IPv6). */
  readonly prefix: number;
  /** `address/prefix`; parsing it gives the same range back. */
  readonly text: string;
}

export const MAX_CIDRS = 256;
/** The longest valid spelling is 49 characters (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128`). */
export const MAX_CIDR_LENGTH = 64;

const SYNTAX_HINT = 'must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32';

// ---------------------------------------------------------------------------------------------
// Address parsing (hand-written: it runs on every request). Results go to module scratch buffers;
// nothing here calls out, so there is no re-entrancy.

/** Eight 16-bit groups of the last IPv6 address parsed. */
const GROUPS = new Int32Array(8);
/** Raw groups before `::` expansion. */
const RAW = new Int32Array(8);

const COLON = 58;
const DOT = 46;
const PERCENT = 37;
const BIAS = 0x80000000 | 0;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Strict dotted quad in `s[i, end)`: the unsigned 32-bit value, or -1. */
function parseV4(s: string, i: number, end: number): number {
  let value = 0;
  for (let part = 0; part < 4; part++) {
    if (i >= end) return -1;
    const first = s.charCodeAt(i) - 48;
    if (first < 0 || first > 9) return -1;
    i++;
    let octet = first;
    if (first !== 0) {
      for (let k = 0; k < 2 && i < end; k++) {
        const d = s.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        octet = octet * 10 + d;
        i++;
      }
      if (octet > 255) return -1;
    }
    value = value * 256 + octet;
    if (part < 3) {
      if (i >= end || s.charCodeAt(i) !== DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

/** IPv6 text in `s[i, end)` into `GROUPS`; false when malformed. */
function parseV6(s: string, i: number, end: number): boolean {
  let n = 0;
  let gap = -1;
  if (i < end && s.charCodeAt(i) === COLON) {
    if (i + 1 >= end || s.charCodeAt(i + 1) !== COLON) return false;
    gap = 0;
    i += 2;
    if (i === end) {
      GROUPS.fill(0);
      return true;
    }
  }
  for (;;) {
    let j = i;
    let v = 0;
    while (j < end && j - i < 5) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j === i) return false;
    if (j < end && s.charCodeAt(j) === DOT) {
      // Dotted IPv4 tail: the last two groups, and the end of the address.
      if (n > 6) return false;
      const v4 = parseV4(s, i, end);
      if (v4 < 0) return false;
      RAW[n++] = v4 >>> 16;
      RAW[n++] = v4 & 0xffff;
      break;
    }
    if (j - i > 4 || n === 8) return false;
    RAW[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== COLON) return false;
    j++;
    if (j < end && s.charCodeAt(j) === COLON) {
      if (gap >= 0) return false;
      gap = n;
      j++;
      if (j === end) break;
    } else if (j === end) {
      return false;
    }
    i = j;
  }
  if (gap < 0) {
    if (n !== 8) return false;
    GROUPS.set(RAW);
    return true;
  }
  // `::` stands for at least one zero group.
  if (n > 7) return false;
  const tail = n - gap;
  for (let k = 0; k < gap; k++) GROUPS[k] = RAW[k];
  for (let k = gap; k < 8 - tail; k++) GROUPS[k] = 0;
  for (let k = 0; k < tail; k++) GROUPS[8 - tail + k] = RAW[gap + k];
  return true;
}

function isMappedV4(): boolean {
  return GROUPS[0] === 0 && GROUPS[1] === 0 && GROUPS[2] === 0 && GROUPS[3] === 0 && GROUPS[4] === 0 && GROUPS[5] === 0xffff;
}

/** Zone id characters accepted by `node:net` `isIP`: `[0-9A-Za-z.:-]+`. */
function isZone(s: string, i: number, end: number): boolean {
  if (i >= end) return false;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Formatting (build time only).

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952: lowercase, no leading zeros, the first longest run of two or more zero groups as `::`. */
function formatV6(groups: ArrayLike<number>): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && groups[e] === 0) e++;
    if (e - k > bestLen) {
      bestAt = k;
      bestLen = e - k;
    }
    k = e;
  }
  const hex = (from: number, to: number): string => Array.from({ length: to - from }, (_, k) => groups[from + k].toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

// ---------------------------------------------------------------------------------------------
// Ranges.

/** Parses a range and returns it normalised, or a reason it is malformed. */
function parseCidrOrReason(text: string): Cidr | string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_CIDR_LENGTH) return SYNTAX_HINT;
  const slash = text.indexOf('/');
  const end = slash < 0 ? text.length : slash;
  const v6 = text.indexOf(':') >= 0;
  let prefix = -1;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return `${SYNTAX_HINT} (the prefix length after / must be a decimal number)`;
    prefix = Number(p);
    if (prefix > (v6 ? 128 : 32)) return `prefix length must be 0 to ${v6 ? 128 : 32} for ${v6 ? 'IPv6' : 'IPv4'}`;
  }
  if (!v6) {
    const v = parseV4(text, 0, end);
    if (v < 0) return SYNTAX_HINT;
    return v4Cidr(v, prefix < 0 ? 32 : prefix);
  }
  if (text.indexOf('%') >= 0) return 'must not carry an IPv6 zone id (%...)';
  if (!parseV6(text, 0, end)) return SYNTAX_HINT;
  if (prefix < 0) prefix = 128;
  if (isMappedV4() && prefix >= 96) return v4Cidr(((GROUPS[6] << 16) | GROUPS[7]) >>> 0, prefix - 96);
  let value = 0n;
  for (let k = 0; k < 8; k++) value = (value << 16n) | BigInt(GROUPS[k]);
  const network = value & v6Mask(prefix);
  const groups = Array.from({ length: 8 }, (_, k) => Number((network >> BigInt(112 - 16 * k)) & 0xffffn));
  const address = formatV6(groups);
  return { family: 6, address, prefix, text: `${address}/${prefix}` };
}

function v4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

function v6Mask(prefix: number): bigint {
  return ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
}

function v4Cidr(value: number, prefix: number): Cidr {
  const address = formatV4((value & v4Mask(prefix)) >>> 0);
  return { family: 4, address, prefix, text: `${address}/${prefix}` };
}

/**
 * Parses `a.b.c.d/n`, an IPv6 range, or a bare address (see the module comment for the exact
 * rules), normalised: host bits cleared, IPv4-mapped ranges as IPv4, IPv6 in RFC 5952 text.
 * Throws `InvalidArgumentError(field, ...)` when malformed.
 */
export function parseCidr(text: string, field = 'cidr'): Cidr {
  const r = parseCidrOrReason(text);
  if (typeof r === 'string') throw new InvalidArgumentError(field, r);
  return r;
}

/**
 * Validates a list of ranges (at most `MAX_CIDRS`), naming the bad entry (`allowed_cidrs[2]`).
 * Returns the normalised texts (`Cidr.text`), de-duplicated, in their first order.
 */
export function checkCidrs(field: string, list: readonly string[]): string[] {
  if (list.length > MAX_CIDRS) throw new InvalidArgumentError(field, `at most ${MAX_CIDRS} ranges are allowed`);
  const out = new Set<string>();
  list.forEach((text, i) => out.add(parseCidr(text, `${field}[${i}]`).text));
  return [...out];
}

/**
 * A set of ranges prepared once for fast membership checks: the ranges of each family become
 * sorted, merged, disjoint intervals searched by bisection over typed arrays (no allocation, no
 * BigInt on the hot path). An empty set contains nothing (a policy that reads an empty list as
 * "any address" must say so itself).
 */
export class CidrSet {
  /** IPv4 intervals: [lo0, hi0, lo1, hi1, ...], unsigned values biased into int32 order. */
  private readonly v4: Int32Array;
  /** IPv6 intervals: 8 biased words each (lo then hi, most significant word first). */
  private readonly v6: Int32Array;
  /** The normalised ranges, in the order given. */
  readonly cidrs: readonly Cidr[];

  constructor(ranges: readonly (string | Cidr)[]) {
    // A `Cidr` is re-read from its text, so a hand-made object cannot smuggle in host bits.
    this.cidrs = ranges.map((r, i) => parseCidr(typeof r === 'string' ? r : r.text, `cidrs[${i}]`));
    const v4: [bigint, bigint][] = [];
    const v6: [bigint, bigint][] = [];
    for (const c of this.cidrs) {
      const bits = c.family === 4 ? 32 : 128;
      let lo = 0n;
      if (c.family === 4) {
        lo = BigInt(parseV4(c.address, 0, c.address.length));
      } else {
        parseV6(c.address, 0, c.address.length);
        for (let k = 0; k < 8; k++) lo = (lo << 16n) | BigInt(GROUPS[k]);
      }
      const hi = lo | ((1n << BigInt(bits - c.prefix)) - 1n);
      (c.family === 4 ? v4 : v6).push([lo, hi]);
    }
    const merged4 = mergeIntervals(v4);
    const merged6 = mergeIntervals(v6);
    this.v4 = new Int32Array(merged4.length * 2);
    merged4.forEach(([lo, hi], i) => {
      this.v4[2 * i] = biased(lo);
      this.v4[2 * i + 1] = biased(hi);
    });
    this.v6 = new Int32Array(merged6.length * 8);
    merged6.forEach(([lo, hi], i) => {
      for (let w = 0; w < 4; w++) {
        const shift = BigInt(96 - 32 * w);
        this.v6[8 * i + w] = biased((lo >> shift) & 0xffffffffn);
        this.v6[8 * i + 4 + w] = biased((hi >> shift) & 0xffffffffn);
      }
    });
  }

  get size(): number {
    return this.cidrs.length;
  }

  /**
   * Whether the client address falls in one of the ranges. Accepts what `node:net` `isIP` accepts;
   * an IPv6 zone id (`fe80::1%eth0`) is ignored for matching. Anything else (including `[::1]`,
   * `host:port`, whitespace, '') is not an address and gives false; this never throws.
   */
  contains(ip: string): boolean {
    if (typeof ip !== 'string') return false;
    let end = ip.length;
    // Dotted quads first: the parser gives up on an IPv6 address within its first group.
    const v = parseV4(ip, 0, end);
    if (v >= 0) return this.containsV4((v ^ BIAS) | 0);
    const pct = ip.indexOf('%');
    if (pct >= 0) {
      if (!isZone(ip, pct + 1, end)) return false;
      end = pct;
    }
    if (!parseV6(ip, 0, end)) return false;
    if (isMappedV4()) return this.containsV4((((GROUPS[6] << 16) | GROUPS[7]) ^ BIAS) | 0);
    return this.containsV6(
      ((GROUPS[0] << 16) | GROUPS[1]) ^ BIAS,
      ((GROUPS[2] << 16) | GROUPS[3]) ^ BIAS,
      ((GROUPS[4] << 16) | GROUPS[5]) ^ BIAS,
      ((GROUPS[6] << 16) | GROUPS[7]) ^ BIAS,
    );
  }

  private containsV4(x: number): boolean {
    const a = this.v4;
    let lo = 0;
    let hi = (a.length >> 1) - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[2 * mid] <= x) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && x <= a[2 * found + 1];
  }

  private containsV6(x0: number, x1: number, x2: number, x3: number): boolean {
    const a = this.v6;
    let lo = 0;
    let hi = (a.length >> 3) - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (compare(a, 8 * mid, x0, x1, x2, x3) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && compare(a, 8 * found + 4, x0, x1, x2, x3) >= 0;
  }
}

/** Sign of `a[off..off+3] - x`, in biased (unsigned) order. */
function compare(a: Int32Array, off: number, x0: number, x1: number, x2: number, x3: number): number {
  if (a[off] !== x0) return a[off] < x0 ? -1 : 1;
  if (a[off + 1] !== x1) return a[off + 1] < x1 ? -1 : 1;
  if (a[off + 2] !== x2) return a[off + 2] < x2 ? -1 : 1;
  if (a[off + 3] !== x3) return a[off + 3] < x3 ? -1 : 1;
  return 0;
}

/** An unsigned 32-bit value as an int32 whose signed order is the unsigned order. */
function biased(u: bigint): number {
  return (Number(u) ^ BIAS) | 0;
}

/** Sorted, disjoint, non-adjacent intervals covering the same addresses. */
function mergeIntervals(list: [bigint, bigint][]): [bigint, bigint][] {
  const sorted = [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}
