import { isIP } from 'node:net';
import fc from 'fast-check';
import { checkCidrs, CidrSet, MAX_CIDRS, parseCidr } from '../../../src/domain/cidr';
import { InvalidArgumentError } from '../../../src/domain/errors';

// ---------------------------------------------------------------------------------------------
// Reference model (BigInt, written independently of the implementation).

type Family = 4 | 6;
interface Addr {
  family: Family;
  value: bigint;
}
interface Range extends Addr {
  prefix: number;
}

const bitsOf = (f: Family): number => (f === 4 ? 32 : 128);
const MAPPED_HIGH = 0xffffn; // upper 96 bits of ::ffff:0:0/96

/** Documented rule: an IPv4-mapped address is the IPv4 address. */
function canonAddr(a: Addr): Addr {
  if (a.family === 6 && a.value >> 32n === MAPPED_HIGH) return { family: 4, value: a.value & 0xffffffffn };
  return a;
}

/** Documented rule: a range in the mapped block with prefix >= 96 is the IPv4 range. */
function canonRange(r: Range): Range {
  if (r.family === 6 && r.prefix >= 96 && r.value >> 32n === MAPPED_HIGH) {
    return { family: 4, value: r.value & 0xffffffffn, prefix: r.prefix - 96 };
  }
  return r;
}

function refContains(r0: Range, a0: Addr): boolean {
  const r = canonRange(r0);
  const a = canonAddr(a0);
  if (r.family !== a.family) return false;
  const host = BigInt(bitsOf(r.family) - r.prefix);
  return (r.value ^ a.value) >> host === 0n;
}

// ---------------------------------------------------------------------------------------------
// Spellings.

function fmt4(v: bigint | number): string {
  const n = Number(v);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function groupsOf(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, k) => Number((v >> BigInt(112 - 16 * k)) & 0xffffn));
}

type Style = 'full' | 'padded' | 'upper' | 'compressed' | 'v4tail';

/** An IPv6 spelling: `compressedRun` picks which zero run (if any) becomes `::`. */
function fmt6(v: bigint, style: Style, compressedRun = 0): string {
  const g = groupsOf(v);
  const hex = (x: number): string => x.toString(16);
  switch (style) {
    case 'full':
      return g.map(hex).join(':');
    case 'padded':
      return g.map((x) => hex(x).padStart(4, '0')).join(':');
    case 'upper':
      return g.map((x) => hex(x).toUpperCase()).join(':');
    case 'v4tail':
      return `${g.slice(0, 6).map(hex).join(':')}:${fmt4(v & 0xffffffffn)}`;
    case 'compressed': {
      const runs: [number, number][] = [];
      for (let k = 0; k < 8; ) {
        if (g[k] !== 0) {
          k++;
          continue;
        }
        let e = k;
        while (e < 8 && g[e] === 0) e++;
        runs.push([k, e]);
        k = e;
      }
      if (runs.length === 0) return g.map(hex).join(':');
      const [s, e] = runs[compressedRun % runs.length];
      return `${g.slice(0, s).map(hex).join(':')}::${g.slice(e).map(hex).join(':')}`;
    }
  }
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Groups biased towards 0 and ffff so that `::` and the mapped block come up often. */
const group = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
const v6value = fc
  .array(group, { minLength: 8, maxLength: 8 })
  .map((gs) => gs.reduce((acc, x) => (acc << 16n) | BigInt(x), 0n));
/** Addresses in, or one group away from, the IPv4-mapped block ::ffff:0:0/96. */
const nearMapped = fc
  .tuple(u32, fc.integer({ min: -1, max: 5 }), fc.integer({ min: 1, max: 0xffff }))
  .map(([low, at, g]) => {
    const groups = [0, 0, 0, 0, 0, 0xffff];
    if (at >= 0) groups[at] = at === 5 ? 0xffff - g : g;
    return groups.reduce((acc, x) => (acc << 16n) | BigInt(x), 0n) * (1n << 32n) + BigInt(low);
  });
const style = fc.constantFrom<Style>('full', 'padded', 'upper', 'compressed', 'v4tail');

const addr4 = u32.map((v): Addr => ({ family: 4, value: BigInt(v) }));
const addr6 = fc.oneof(v6value, nearMapped).map((value): Addr => ({ family: 6, value }));
const range4 = fc.tuple(u32, fc.integer({ min: 0, max: 32 })).map(([v, prefix]): Range => ({ family: 4, value: BigInt(v), prefix }));
const range6 = fc.tuple(fc.oneof(v6value, nearMapped), fc.integer({ min: 0, max: 128 })).map(([value, prefix]): Range => ({ family: 6, value, prefix }));

function spell(a: Addr, s: Style, run = 0): string {
  return a.family === 4 ? fmt4(a.value) : fmt6(a.value, s, run);
}

function spellRange(r: Range, s: Style, run = 0): string {
  return `${spell(r, s, run)}/${r.prefix}`;
}

/** Addresses near a range: inside it with random host bits, or just outside either end. */
function near(r: Range, pick: bigint, where: number): Addr {
  const bits = bitsOf(r.family);
  const all = (1n << BigInt(bits)) - 1n;
  const hostMask = (1n << BigInt(bits - r.prefix)) - 1n;
  const net = r.value & ~hostMask & all;
  let value: bigint;
  if (where === 0) value = net | (pick & hostMask);
  else if (where === 1) value = (net - 1n) & all;
  else value = ((net | hostMask) + 1n) & all;
  return { family: r.family, value };
}

/** `::` replaces the first longest run of two or more zero groups, and only that. */
function expectRfc5952Compression(text: string): void {
  const [left, right] = text.split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const runs = (gs: string[]): number[] => {
    const out = [0];
    for (const g of gs) {
      if (g === '0') out[out.length - 1]++;
      else out.push(0);
    }
    return out;
  };
  if (right === undefined) {
    expect(Math.max(0, ...runs(groups(left)))).toBeLessThanOrEqual(1);
    return;
  }
  const compressed = 8 - groups(left).length - groups(right).length;
  expect(compressed).toBeGreaterThanOrEqual(2);
  expect(Math.max(0, ...runs(groups(left)))).toBeLessThan(compressed);
  expect(Math.max(0, ...runs(groups(right)))).toBeLessThanOrEqual(compressed);
}

const expectInvalid = (fn: () => unknown, field: string, message?: RegExp): void => {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect((caught as InvalidArgumentError).field).toBe(field);
  if (message) expect((caught as InvalidArgumentError).message).toMatch(message);
};

// ---------------------------------------------------------------------------------------------

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', 4, '10.0.0.0', 8],
    ['10.1.2.3/8', 4, '10.0.0.0', 8],
    ['192.168.1.77/24', 4, '192.168.1.0', 24],
    ['1.2.3.4', 4, '1.2.3.4', 32],
    ['1.2.3.4/32', 4, '1.2.3.4', 32],
    ['0.0.0.0/0', 4, '0.0.0.0', 0],
    ['255.255.255.255/0', 4, '0.0.0.0', 0],
    ['255.255.255.255/31', 4, '255.255.255.254', 31],
    ['2001:db8::/32', 6, '2001:db8::', 32],
    ['2001:DB8:0:0:0:0:0:1', 6, '2001:db8::1', 128],
    ['2001:0db8:0000:0000:0000:0000:0000:0001/64', 6, '2001:db8::', 64],
    ['2001:db8:ffff:ffff::/33', 6, '2001:db8:8000::', 33],
    ['::', 6, '::', 128],
    ['::/0', 6, '::', 0],
    ['::1', 6, '::1', 128],
    ['1::', 6, '1::', 128],
    ['1:2:3:4:5:6:7::', 6, '1:2:3:4:5:6:7:0', 128],
    ['::2:3:4:5:6:7:8', 6, '0:2:3:4:5:6:7:8', 128],
    ['1:0:0:1:0:0:0:1', 6, '1:0:0:1::1', 128],
    ['1:0:0:2:0:0:3:4', 6, '1::2:0:0:3:4', 128],
    ['1:0:2:3:4:5:6:7', 6, '1:0:2:3:4:5:6:7', 128],
    ['64:ff9b::1.2.3.4/96', 6, '64:ff9b::', 96],
    ['::1.2.3.4', 6, '::102:304', 128],
    ['::ffff:0:0/95', 6, '::fffe:0:0', 95],
    // IPv4-mapped ranges are IPv4 ranges.
    ['::ffff:1.2.3.4', 4, '1.2.3.4', 32],
    ['::FFFF:0102:0304', 4, '1.2.3.4', 32],
    ['::ffff:10.0.0.0/104', 4, '10.0.0.0', 8],
    ['::ffff:10.9.9.9/104', 4, '10.0.0.0', 8],
    ['::ffff:0:0/96', 4, '0.0.0.0', 0],
    ['0:0:0:0:0:ffff:c0a8:101/120', 4, '192.168.1.0', 24],
  ])('parses %j as family %d %s/%d', (text, family, address, prefix) => {
    const c = parseCidr(text);
    expect(c).toEqual({ family, address, prefix, text: `${address}/${prefix}` });
    expect(parseCidr(c.text)).toEqual(c);
  });

  it.each([
    '',
    ' 10.0.0.0/8',
    '10.0.0.0/8 ',
    '10.0.0.0 /8',
    '10.0.0.0/33',
    '10.0.0.0/',
    '/8',
    '10.0.0.0/08',
    '10.0.0.0/-1',
    '10.0.0.0/+8',
    '10.0.0.0/8/8',
    '10.0.0.0/1e1',
    '10.0.0/8',
    '10.0.0.0.0',
    '256.0.0.0',
    '1.2.3.-4',
    '010.0.0.0/8',
    '1.2.3.04',
    '0x1.2.3.4',
    '1.2.3.4.',
    '::/129',
    '::/1280',
    ':::',
    ':::/0',
    ':1::',
    '1::2::3',
    '12345::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    'fe80::1%eth0',
    'fe80::1%eth0/64',
    'g::1',
    '::1.2.3',
    '::1.2.3.256',
    '::1.2.3.04',
    '1.2.3.4::',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    '1:2:3:4:5:6::1.2.3.4',
    '[::1]',
    '[::1]/128',
    '10.0.0.0/8,10.1.0.0/16',
    '10.0.0.0/８',
    '１0.0.0.0/8',
    '::ffff:1.2.3.4/129',
    'a'.repeat(100),
    `${'0:'.repeat(30)}:/0`,
  ])('rejects %j with an InvalidArgumentError', (text) => {
    expectInvalid(() => parseCidr(text), 'cidr', /^cidr: /);
    expectInvalid(() => parseCidr(text, 'allowed_cidrs[3]'), 'allowed_cidrs[3]');
  });

  it('explains the failure', () => {
    expect(() => parseCidr('nope')).toThrow('cidr: must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32');
    expect(() => parseCidr('10.0.0.0/33')).toThrow('prefix length must be 0 to 32 for IPv4');
    expect(() => parseCidr('::/129')).toThrow('prefix length must be 0 to 128 for IPv6');
    expect(() => parseCidr('10.0.0.0/x')).toThrow('the prefix length after / must be a decimal number');
    expect(() => parseCidr('fe80::%1/64')).toThrow('zone id');
  });

  it('round-trips every spelling of an IPv4 range to one normal form', () => {
    fc.assert(
      fc.property(range4, (r) => {
        const c = parseCidr(spellRange(r, 'full'));
        const net = r.prefix === 0 ? 0n : (r.value >> BigInt(32 - r.prefix)) << BigInt(32 - r.prefix);
        expect(c).toEqual({ family: 4, address: fmt4(net), prefix: r.prefix, text: `${fmt4(net)}/${r.prefix}` });
        expect(parseCidr(c.text)).toEqual(c);
        expect(parseCidr(`::ffff:${fmt4(r.value)}/${r.prefix + 96}`)).toEqual(c);
      }),
    );
  });

  it('round-trips every spelling of an IPv6 range to one normal form', () => {
    fc.assert(
      fc.property(range6, style, fc.nat(), fc.nat(), (r, s, run, run2) => {
        const c = parseCidr(spellRange(r, s, run));
        expect(parseCidr(spellRange(r, 'compressed', run2))).toEqual(c);
        expect(parseCidr(c.text)).toEqual(c);
        const canon = canonRange(r);
        expect(c.family).toBe(canon.family);
        expect(c.prefix).toBe(canon.prefix);
        if (c.family === 6) {
          // RFC 5952 text: lowercase, no leading zeros, at most one `::` and never for one group.
          expect(c.address).toMatch(/^[0-9a-f:]+$/);
          expect(c.address).not.toMatch(/(^|:)0[0-9a-f]/);
          expect(c.address.split('::').length).toBeLessThanOrEqual(2);
          expect(c.address.split(':').length === 8 || c.address.includes('::')).toBe(true);
          expectRfc5952Compression(c.address);
        }
      }),
    );
  });

  it('a bare address is one address (/32 or /128)', () => {
    fc.assert(
      fc.property(fc.oneof(addr4, addr6), style, (a, s) => {
        const c = parseCidr(spell(a, s));
        const ca = canonAddr(a);
        expect(c.prefix).toBe(bitsOf(ca.family));
        expect(new CidrSet([c]).contains(spell(a, 'full'))).toBe(true);
      }),
    );
  });

  it('accepts exactly the addresses node:net isIP accepts (without zone ids)', () => {
    fc.assert(
      fc.property(addressLike, (text) => {
        const ok = isIP(text) !== 0 && !text.includes('%');
        let parsed = true;
        try {
          parseCidr(text);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
          parsed = false;
        }
        expect(parsed).toBe(ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but InvalidArgumentError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          parseCidr(text);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
        }
      }),
    );
  });
});

/** Strings close to addresses: valid-looking pieces joined in random order, with zone ids. */
const addressLike = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.integer({ min: 0, max: 0xffff }).map((x) => x.toString(16)),
        fc.constantFrom(':', '::', '.', '%eth0', '%', '0', '00', '00000', 'FFFF', 'ffff', 'g'),
        fc.integer({ min: 0, max: 300 }).map(String),
        u32.map(fmt4),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join('')),
  fc.tuple(addr6, style, fc.nat(), fc.constantFrom('', '', '%eth0', '%1', '%', '%a b')).map(([a, s, run, zone]) => spell(a, s, run) + zone),
  fc.tuple(addr6, style, fc.nat(), fc.nat({ max: 40 }), fc.constantFrom('', ':', '::', '.', '0', '1.2.3.4')).map(([a, s, run, at, junk]) => {
    const t = spell(a, s, run);
    const i = at % (t.length + 1);
    return t.slice(0, i) + junk + t.slice(i + 1);
  }),
  addr4.map((a) => spell(a, 'full')),
);

describe('checkCidrs', () => {
  it('returns the normalised ranges, de-duplicated, in order', () => {
    expect(checkCidrs('allowed_cidrs', [])).toEqual([]);
    expect(checkCidrs('allowed_cidrs', ['10.1.2.3/8', '2001:DB8::/32', '10.0.0.0/8', '::ffff:10.0.0.0/104', '1.2.3.4'])).toEqual([
      '10.0.0.0/8',
      '2001:db8::/32',
      '1.2.3.4/32',
    ]);
  });

  it('names the bad entry', () => {
    expectInvalid(() => checkCidrs('allowed_cidrs', ['10.0.0.0/8', '::1', '10.0.0.0/33']), 'allowed_cidrs[2]', /^allowed_cidrs\[2\]: prefix length/);
    expectInvalid(() => checkCidrs('policy.allowed_cidrs', ['']), 'policy.allowed_cidrs[0]');
  });

  it(`allows at most ${MAX_CIDRS} entries`, () => {
    expect(MAX_CIDRS).toBe(256);
    const list = Array.from({ length: 256 }, (_, i) => `10.0.${i}.0/24`);
    expect(checkCidrs('allowed_cidrs', list)).toHaveLength(256);
    expectInvalid(() => checkCidrs('allowed_cidrs', [...list, '::1']), 'allowed_cidrs', /at most 256/);
  });
});

describe('CidrSet', () => {
  it('an empty set contains nothing', () => {
    const set = new CidrSet([]);
    expect(set.size).toBe(0);
    for (const ip of ['1.2.3.4', '::1', '::ffff:1.2.3.4', '0.0.0.0']) expect(set.contains(ip)).toBe(false);
  });

  it('matches fixed cases', () => {
    const set = new CidrSet(['10.0.0.0/8', '192.168.1.0/24', '2001:db8::/32', '203.0.113.7']);
    expect(set.contains('10.0.0.0')).toBe(true);
    expect(set.contains('10.255.255.255')).toBe(true);
    expect(set.contains('11.0.0.0')).toBe(false);
    expect(set.contains('9.255.255.255')).toBe(false);
    expect(set.contains('192.168.1.200')).toBe(true);
    expect(set.contains('192.168.2.1')).toBe(false);
    expect(set.contains('203.0.113.7')).toBe(true);
    expect(set.contains('203.0.113.8')).toBe(false);
    expect(set.contains('2001:db8::1')).toBe(true);
    expect(set.contains('2001:DB8:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF')).toBe(true);
    expect(set.contains('2001:db9::')).toBe(false);
    expect(set.contains('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(false);
    expect(set.contains('::1')).toBe(false);
  });

  it('ignores an IPv6 zone id on the client address', () => {
    const set = new CidrSet(['fe80::/10']);
    expect(set.contains('fe80::1%eth0')).toBe(true);
    expect(set.contains('fe80::1%')).toBe(false);
    expect(set.contains('fe80::1%a b')).toBe(false);
    expect(set.contains('fe80::1%eth0%eth1')).toBe(false);
    expect(set.contains('1.2.3.4%eth0')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 as IPv4, both ways', () => {
    const v4 = new CidrSet(['10.0.0.0/8']);
    expect(v4.contains('::ffff:10.1.2.3')).toBe(true);
    expect(v4.contains('::FFFF:a01:203')).toBe(true);
    expect(v4.contains('0:0:0:0:0:ffff:0a01:0203')).toBe(true);
    expect(v4.contains('::ffff:11.1.2.3')).toBe(false);
    // IPv4-compatible and NAT64 embeddings are plain IPv6.
    expect(v4.contains('::10.1.2.3')).toBe(false);
    expect(v4.contains('64:ff9b::10.1.2.3')).toBe(false);

    const mapped = new CidrSet(['::ffff:10.0.0.0/104']);
    expect(mapped.contains('10.1.2.3')).toBe(true);
    expect(mapped.contains('::ffff:10.1.2.3')).toBe(true);
    expect(mapped.contains('11.0.0.0')).toBe(false);

    const allV6 = new CidrSet(['::/0']);
    expect(allV6.contains('::ffff:1.2.3.4')).toBe(false);
    expect(allV6.contains('1.2.3.4')).toBe(false);
    expect(allV6.contains('::1')).toBe(true);
    expect(allV6.contains('::1.2.3.4')).toBe(true);
    expect(new CidrSet(['::/80']).contains('::ffff:1.2.3.4')).toBe(false);

    // Only ::ffff:0:0/96 is the mapped block.
    for (const ip of ['::1:ffff:1.2.3.4', '1::ffff:1.2.3.4', '::fffe:1.2.3.4', 'ffff::ffff:1.2.3.4', '0:0:0:1:0:ffff:102:304']) {
      expect(allV6.contains(ip)).toBe(true);
      expect(new CidrSet(['0.0.0.0/0']).contains(ip)).toBe(false);
    }

    const allV4 = new CidrSet(['0.0.0.0/0']);
    expect(allV4.contains('::ffff:1.2.3.4')).toBe(true);
    expect(allV4.contains('1.2.3.4')).toBe(true);
    expect(allV4.contains('::1')).toBe(false);
    expect(new CidrSet(['::ffff:0:0/96']).contains('255.255.255.255')).toBe(true);
  });

  it('/0 contains every address of its family and none of the other', () => {
    const v4 = new CidrSet(['0.0.0.0/0']);
    const v6 = new CidrSet(['::/0']);
    fc.assert(
      fc.property(fc.oneof(addr4, addr6), style, (a0, s) => {
        const a = canonAddr(a0);
        const text = spell(a0, s);
        expect(v4.contains(text)).toBe(a.family === 4);
        expect(v6.contains(text)).toBe(a.family === 6);
      }),
    );
  });

  it('IPv4: same top n bits are in, a flip of bit n-1 is out', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 32 }), u32, (a, n, other) => {
        const set = new CidrSet([`${fmt4(a)}/${n}`]);
        const host = n === 32 ? 0 : 2 ** (32 - n) - 1;
        const same = ((a & ~host) | (other & host)) >>> 0;
        expect(set.contains(fmt4(same))).toBe(true);
        expect(set.contains(`::ffff:${fmt4(same)}`)).toBe(true);
        if (n > 0) {
          const flipped = (same ^ (1 << (32 - n))) >>> 0;
          expect(set.contains(fmt4(flipped))).toBe(false);
        }
        const x = { family: 4 as const, value: BigInt(other) };
        expect(set.contains(fmt4(other))).toBe(refContains({ family: 4, value: BigInt(a), prefix: n }, x));
      }),
    );
  });

  it('IPv6: same top n bits are in, a flip of bit n-1 is out (BigInt reference)', () => {
    fc.assert(
      fc.property(v6value, fc.integer({ min: 0, max: 128 }), v6value, style, style, (a, n, other, s1, s2) => {
        const r: Range = { family: 6, value: a, prefix: n };
        const set = new CidrSet([spellRange(r, s1)]);
        const host = (1n << BigInt(128 - n)) - 1n;
        const same: Addr = { family: 6, value: (a & ~host) | (other & host) };
        expect(set.contains(spell(same, s2))).toBe(refContains(r, same));
        if (canonRange(r).family === 6) expect(set.contains(spell(same, s2))).toBe(canonAddr(same).family === 6);
        if (n > 0) {
          const flipped: Addr = { family: 6, value: same.value ^ (1n << BigInt(128 - n)) };
          expect(set.contains(spell(flipped, s2))).toBe(refContains(r, flipped));
          if (canonRange(r).family === 6 && canonAddr(flipped).family === 6) expect(set.contains(spell(flipped, s2))).toBe(false);
        }
        const x: Addr = { family: 6, value: other };
        expect(set.contains(spell(x, s2))).toBe(refContains(r, x));
      }),
    );
  });

  it('agrees with the reference on sets of mixed, overlapping ranges', () => {
    const ranges = fc.array(fc.oneof(range4, range6, range4.map((r) => ({ ...r, prefix: Math.max(r.prefix, 20) }))), { maxLength: 12 });
    fc.assert(
      fc.property(
        ranges,
        fc.array(fc.tuple(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 2 }), style), { maxLength: 20 }),
        fc.array(fc.oneof(addr4, addr6), { maxLength: 10 }),
        (rs, picks, randoms) => {
          const set = new CidrSet(rs.map((r) => spellRange(r, 'compressed')));
          const probes: [Addr, Style][] = randoms.map((a) => [a, 'full']);
          if (rs.length > 0) for (const [i, bits, where, s] of picks) probes.push([near(rs[i % rs.length], bits, where), s]);
          for (const [a, s] of probes) {
            expect(set.contains(spell(a, s))).toBe(rs.some((r) => refContains(r, a)));
          }
        },
      ),
    );
  });

  it('keeps ranges one address apart separate, and joins adjacent ones', () => {
    const v4 = new CidrSet(['10.0.0.0/32', '10.0.0.2/31', '10.0.0.4/32', '10.0.0.6/32']);
    expect(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'].map((ip) => v4.contains(ip))).toEqual([
      true,
      false,
      true,
      true,
      true,
      false,
      true,
      false,
    ]);
    const v6 = new CidrSet(['2001:db8::/128', '2001:db8::2/127', '2001:db8::ffff:ffff/128', '2001:db8::1:0:0/128']);
    expect(['2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4'].map((ip) => v6.contains(ip))).toEqual([true, false, true, true, false]);
    expect(v6.contains('2001:db8::ffff:fffe')).toBe(false);
    expect(v6.contains('2001:db8::ffff:ffff')).toBe(true);
    expect(v6.contains('2001:db8::1:0:0')).toBe(true);
    expect(v6.contains('2001:db8::1:0:1')).toBe(false);
    expect(v6.contains('2001:db8::1:0')).toBe(false);
  });

  it('agrees with the reference on clusters of small neighbouring ranges', () => {
    fc.assert(
      fc.property(
        fc.oneof(addr4, addr6),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 2 })), { maxLength: 12 }),
        (base, pieces) => {
          const bits = bitsOf(base.family);
          const all = (1n << BigInt(bits)) - 1n;
          const start = base.value & ~63n & all;
          const rs: Range[] = pieces.map(([k, hostBits]) => ({ family: base.family, value: start + BigInt(k), prefix: bits - hostBits }));
          const set = new CidrSet(rs.map((r) => spellRange(r, 'full')));
          const got: boolean[] = [];
          const want: boolean[] = [];
          for (let k = -1n; k <= 64n; k++) {
            const a: Addr = { family: base.family, value: (start + k) & all };
            got.push(set.contains(spell(a, 'full')));
            want.push(rs.some((r) => refContains(r, a)));
          }
          expect(got).toEqual(want);
        },
      ),
    );
  });

  it('agrees with node:net isIP on what an address is, and never throws', () => {
    const all = new CidrSet(['0.0.0.0/0', '::/0']);
    fc.assert(
      fc.property(fc.oneof(addressLike, fc.string({ maxLength: 60 })), (text) => {
        expect(all.contains(text)).toBe(isIP(text) !== 0);
      }),
      { numRuns: 3000 },
    );
    for (const bad of ['', ' ', '1.2.3.4 ', '[::1]', '1.2.3.4:80', '[::1]:80', 'localhost', '::ffff:1.2.3.4:80']) {
      expect(all.contains(bad)).toBe(false);
    }
    expect(all.contains(undefined as unknown as string)).toBe(false);
  });

  it('builds from parsed ranges and names a bad entry', () => {
    const c = parseCidr('10.0.0.0/8');
    expect(new CidrSet([c, '::1']).contains('10.9.9.9')).toBe(true);
    expect(new CidrSet(['10.1.2.3/8']).cidrs).toEqual([c]);
    expectInvalid(() => new CidrSet(['10.0.0.0/8', 'nope']), 'cidrs[1]');
    // A hand-made Cidr is re-read from its text.
    const forged = { family: 4 as const, address: '10.1.2.3', prefix: 8, text: '10.1.2.3/8' };
    expect(new CidrSet([forged]).cidrs).toEqual([c]);
  });
});
