import { InvalidArgumentError } from './errors';
import type { TimeWindow, Weekday } from './policy';
import { WEEKDAYS } from './policy';

/**
 * Time windows: local wall-clock hours on some weekdays, in an IANA time zone.
 *
 * Rules:
 * - `start` is `HH:MM` from 00:00 to 23:59; `end` is `HH:MM` from 00:01 to 24:00 and exclusive; a
 *   window needs start < end. Windows do not span midnight: 22:00 to 02:00 is two windows,
 *   22:00-24:00 on one day and 00:00-02:00 on the next. Boundaries are whole minutes, so a
 *   window 09:00-17:00 holds 09:00:00.000 up to 16:59:59.999 local time.
 * - An instant is converted to the zone's local time with the zone's offset at that instant, so
 *   each instant has exactly one local time. On a spring-forward day the skipped wall-clock hour
 *   never occurs (a window inside it never matches); on a fall-back day the repeated hour occurs
 *   twice (a window over it matches for two real hours).
 * - An empty set of windows contains no instant (a policy that reads an empty list as "any time"
 *   must say so itself).
 */

export const MAX_TIME_WINDOWS = 32;
export const MAX_TIME_ZONE_LENGTH = 64;
/** The reason a request outside every window is denied (machine-readable). */
export const OUTSIDE_TIME_WINDOW = 'outside_time_window';
export type TimeWindowDenial = typeof OUTSIDE_TIME_WINDOW;

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MINUTES_PER_DAY = 1440;
const SECONDS_PER_WEEK = 604_800;
/** The ECMAScript time range (±100,000,000 days around the epoch). */
const MAX_TIME = 8.64e15;

const CLOCK = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** `HH:MM` as minutes of the day, `24:00` (as 1440) only when `allow24`; -1 when malformed. */
function minutesOf(text: string, allow24: boolean): number {
  if (typeof text !== 'string') return -1;
  if (allow24 && text === '24:00') return MINUTES_PER_DAY;
  const m = CLOCK.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : -1;
}

// ---------------------------------------------------------------------------------------------
// Validation.

/** IANA names (and `UTC`) only: refuses offset spellings such as `+05:30` that some engines take. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;

/**
 * A time zone the runtime knows by an IANA name (`UTC`, `Europe/Berlin`, `Etc/GMT+5`, links such
 * as `US/Eastern`; case-insensitive as in Intl). Returned unchanged.
 */
export function checkTimeZone(field: string, tz: string): string {
  const message = 'must be an IANA time zone such as UTC or Europe/Berlin';
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > MAX_TIME_ZONE_LENGTH || !ZONE_NAME.test(tz)) {
    throw new InvalidArgumentError(field, message);
  }
  try {
    zoneClock(tz);
  } catch (err) {
    if (err instanceof RangeError) throw new InvalidArgumentError(field, message);
    throw err;
  }
  return tz;
}

/**
 * Validates windows (at most `MAX_TIME_WINDOWS`), naming the bad part (`time_windows[1].end`,
 * `time_windows[0].days[2]`). Returns copies.
 */
export function checkTimeWindows(field: string, windows: readonly TimeWindow[]): TimeWindow[] {
  if (windows.length > MAX_TIME_WINDOWS) {
    throw new InvalidArgumentError(field, `at most ${MAX_TIME_WINDOWS} windows are allowed`);
  }
  return windows.map((w, i) => {
    const at = `${field}[${i}]`;
    const days = w.days ?? [];
    if (days.length === 0) throw new InvalidArgumentError(`${at}.days`, 'must name at least one day');
    const seen = new Set<Weekday>();
    days.forEach((d, j) => {
      if (!WEEKDAYS.includes(d)) throw new InvalidArgumentError(`${at}.days[${j}]`, `must be one of ${WEEKDAYS.join(', ')}`);
      if (seen.has(d)) throw new InvalidArgumentError(`${at}.days[${j}]`, `repeats ${d}`);
      seen.add(d);
    });
    const start = minutesOf(w.start, false);
    if (start < 0) throw new InvalidArgumentError(`${at}.start`, 'must be HH:MM from 00:00 to 23:59');
    const end = minutesOf(w.end, true);
    if (end < 0) throw new InvalidArgumentError(`${at}.end`, 'must be HH:MM from 00:01 to 24:00');
    if (end <= start) {
      throw new InvalidArgumentError(
        `${at}.end`,
        'must be after start (a window does not span midnight: use two windows, e.g. 22:00-24:00 and 00:00-02:00 on the next day)',
      );
    }
    return { days: [...days], start: w.start, end: w.end };
  });
}

// ---------------------------------------------------------------------------------------------
// Zone offsets.

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/**
 * One zone's offset from UTC, memoised per UTC hour.
 *
 * Intl gives the local weekday and time of an instant (about a microsecond or more, and it
 * allocates); the hot path needs only the offset, which changes only at the zone's transitions.
 * The cache is one slot: the UTC hour last asked about, with the offset before and after a
 * transition instant `at` inside it (`at` is the hour's end when there is none). Filling it asks
 * Intl for the offset at the hour's first and last millisecond; when they differ, the transition
 * instant is found exactly by bisection over seconds (about a dozen more calls, once per
 * transition). So transitions at any instant are exact, including those at half past the UTC hour
 * (Lord Howe, India's history) or at odd minutes (St John's 00:01 local). The one assumption is
 * that no zone changes offset twice within one UTC hour (a change and its reversal would go
 * unseen): in the tz data of Node 20's ICU, consecutive changes of any zone from 1971 to 2037 are
 * at least a week apart.
 */
class ZoneClock {
  private hour = Number.NaN;
  private at = 0;
  private before = 0;
  private after = 0;

  constructor(private readonly format: Intl.DateTimeFormat) {}

  /** Local time minus UTC at `t` (ms, integer), memoised. */
  offsetAt(t: number): number {
    const h = Math.floor(t / HOUR);
    if (h !== this.hour) this.fill(h);
    return t < this.at ? this.before : this.after;
  }

  private fill(h: number): void {
    const b0 = Math.max(h * HOUR, -MAX_TIME);
    const b1 = Math.min((h + 1) * HOUR, MAX_TIME + 1);
    const a = this.exactOffset(b0);
    const b = this.exactOffset(b1 - 1);
    let at = b1;
    if (a !== b) {
      let lo = Math.floor(b0 / 1000); // offset a
      let hi = Math.floor((b1 - 1) / 1000); // offset b
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (this.exactOffset(mid * 1000) === a) lo = mid;
        else hi = mid;
      }
      at = hi * 1000;
    }
    this.hour = h;
    this.at = at;
    this.before = a;
    this.after = b;
  }

  /** The offset at `t` straight from Intl (whole seconds; offsets are never more than a day). */
  exactOffset(t: number): number {
    let weekday = 0;
    let local = 0;
    for (const p of this.format.formatToParts(t)) {
      switch (p.type) {
        case 'weekday':
          weekday = WEEKDAY_INDEX[p.value];
          break;
        case 'hour':
          local += Number(p.value) * 3600;
          break;
        case 'minute':
          local += Number(p.value) * 60;
          break;
        case 'second':
          local += Number(p.value);
          break;
        default:
      }
    }
    local += weekday * 86_400;
    // The epoch (1970-01-01) was a Thursday: day 0 is weekday 3 counting from Monday.
    const utc = mod(Math.floor(t / 1000) + 3 * 86_400, SECONDS_PER_WEEK);
    return (mod(local - utc + SECONDS_PER_WEEK / 2, SECONDS_PER_WEEK) - SECONDS_PER_WEEK / 2) * 1000;
  }
}

const clocks = new Map<string, ZoneClock>();
const MAX_CACHED_NAMES = 1024;

/** The shared clock of a zone (throws RangeError for an unknown zone). */
function zoneClock(timeZone: string): ZoneClock {
  let clock = clocks.get(timeZone);
  if (clock) return clock;
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  // Spellings of one zone (case, links) share the canonical name's clock.
  const canonical = format.resolvedOptions().timeZone;
  clock = clocks.get(canonical);
  if (!clock) {
    clock = new ZoneClock(format);
    clocks.set(canonical, clock);
  }
  if (clocks.size < MAX_CACHED_NAMES) clocks.set(timeZone, clock);
  return clock;
}

/** Zone offset (local minus UTC, ms) at an instant, through the memoised clock. */
export function zoneOffsetMs(timeZone: string, nowMs: number): number {
  return zoneClock(timeZone).offsetAt(Math.floor(nowMs));
}

// ---------------------------------------------------------------------------------------------
// The prepared set.

/**
 * Windows in one zone prepared once: a bitmap of the 10,080 minutes of the local week (Monday
 * 00:00 first). `contains` is an offset lookup (memoised, see `ZoneClock`), some arithmetic and
 * one bit test.
 */
export class TimeWindowSet {
  readonly timeZone: string;
  readonly windows: readonly TimeWindow[];
  private readonly clock: ZoneClock;
  private readonly minutes = new Uint32Array((7 * MINUTES_PER_DAY) / 32);

  /** Validates as `checkTimeZone`/`checkTimeWindows` do (fields `time_zone`, `time_windows`). */
  constructor(timeZone: string, windows: readonly TimeWindow[]) {
    this.timeZone = checkTimeZone('time_zone', timeZone);
    this.windows = checkTimeWindows('time_windows', windows);
    this.clock = zoneClock(timeZone);
    for (const w of this.windows) {
      const start = minutesOf(w.start, false);
      const end = minutesOf(w.end, true);
      for (const d of w.days) {
        const base = WEEKDAYS.indexOf(d) * MINUTES_PER_DAY;
        for (let m = base + start; m < base + end; m++) this.minutes[m >>> 5] |= 1 << (m & 31);
      }
    }
  }

  get isEmpty(): boolean {
    return this.windows.length === 0;
  }

  /** Whether the instant (epoch ms) falls in one of the windows; false for a non-finite or out-of-range instant. */
  contains(nowMs: number): boolean {
    if (!(nowMs >= -MAX_TIME && nowMs <= MAX_TIME)) return false;
    const t = Math.floor(nowMs);
    const local = t + this.clock.offsetAt(t);
    const days = Math.floor(local / DAY);
    const weekday = mod(days + 3, 7);
    const m = weekday * MINUTES_PER_DAY + Math.floor((local - days * DAY) / MINUTE);
    return (this.minutes[m >>> 5] & (1 << (m & 31))) !== 0;
  }

  /** Why the instant is denied, or `undefined` when it is inside a window. */
  describeDenial(nowMs: number): TimeWindowDenial | undefined {
    return this.contains(nowMs) ? undefined : OUTSIDE_TIME_WINDOW;
  }
}
