import type { AuditAppendOptions, AuditEntry, AuditLog, AuditPage, AuditQuery, NewAuditEntry } from '../../ports/audit-log';
import { toStoreError, type RedisClient } from '../redis/redis-client';
import { checkDedupeIds, matches } from './audit-filter';

/*
 * The audit trail in Redis streams: `{kw}:audit` holds every entry and `{kw}:audit:s:<service>`
 * each service's, under the same stream id, so a tenant's queries read only its own stream. The
 * id (`<ms>-<seq>`, Redis server time) orders entries and is their recording time. Retention is
 * by age: every append trims entries older than `retentionMs` (MINID, approximate), plus a hard
 * cap on length per stream. One script per batch: an entry is in both streams or in neither.
 * With `dedupeIds`, each entry first sets a marker `{kw}:audit:seen:<id>` (SET NX, with a TTL)
 * and is appended only when the marker is new.
 */
const APPEND = `
local t = redis.call('TIME')
local cutoff = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) - tonumber(ARGV[1])
local maxlen = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local dedupe = ARGV[4] == '1'
local ids = {}
for i = 1, n do
  local base = 5 + (i - 1) * 5
  if not dedupe or redis.call('SET', KEYS[1 + n + i], '1', 'NX', 'PX', ARGV[5]) then
    local fields = {'s', ARGV[base + 1], 'k', ARGV[base + 2], 'y', ARGV[base + 3], 'a', ARGV[base + 4], 'd', ARGV[base + 5]}
    local id = redis.call('XADD', KEYS[1], 'MINID', '~', cutoff, '*', unpack(fields))
    redis.call('XADD', KEYS[i + 1], 'MINID', '~', cutoff, id, unpack(fields))
    redis.call('XTRIM', KEYS[i + 1], 'MAXLEN', '~', maxlen)
    ids[#ids + 1] = id
  end
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
return ids`;

/** How long the id of a deduplicated entry is remembered (`AuditAppendOptions.dedupeIds`). */
const DEDUPE_TTL_MS = 3 * 86_400_000;

export interface RedisAuditLogOptions {
  redis: RedisClient;
  retentionMs: number;
  /** Most entries per stream. */
  maxEntries: number;
  /** Entries one list call examines at most before returning a partial page with a cursor. */
  scanBudget?: number;
  keyPrefix?: string;
}

export class RedisAuditLog implements AuditLog {
  private readonly p: string;

  constructor(private readonly opts: RedisAuditLogOptions) {
    this.p = `{${opts.keyPrefix ?? 'kw'}}:`;
  }

  async append(entries: readonly NewAuditEntry[], opts: AuditAppendOptions = {}): Promise<void> {
    if (entries.length === 0) return;
    const dedupe = checkDedupeIds(entries, opts);
    const keys = [`${this.p}audit`, ...entries.map((e) => this.serviceStream(e.service))];
    if (dedupe) keys.push(...dedupe.map((id) => `${this.p}audit:seen:${id}`));
    const args: string[] = [String(this.opts.retentionMs), String(this.opts.maxEntries), String(entries.length), dedupe ? '1' : '0', String(DEDUPE_TTL_MS)];
    for (const e of entries) args.push(e.service, e.keyId, e.type, e.actor, JSON.stringify(e.detail));
    try {
      await this.opts.redis.eval(APPEND, keys.length, ...keys, ...args);
    } catch (err) {
      throw toStoreError('audit append', err);
    }
  }

  async list(q: AuditQuery): Promise<AuditPage> {
    const stream = q.service === undefined ? `${this.p}audit` : this.serviceStream(q.service);
    const budget = this.opts.scanBudget ?? 5000;
    const floor = q.from === undefined ? '-' : `${q.from}-0`;
    let end = q.before === undefined ? (q.to === undefined ? '+' : `${q.to}-18446744073709551615`) : `(${q.before}`;
    const out: AuditEntry[] = [];
    let scanned = 0;
    try {
      for (;;) {
        const batch = Math.min(500, budget - scanned);
        const rows = (await this.opts.redis.xrevrange(stream, end, floor, 'COUNT', batch)) as [string, string[]][];
        for (const [id, fields] of rows) {
          const e = decode(id, fields);
          if (!matches(e, q)) continue;
          if (out.length === q.limit) return { entries: out, nextBefore: out[out.length - 1].id };
          out.push(e);
        }
        scanned += rows.length;
        if (rows.length < batch) return { entries: out };
        end = `(${rows[rows.length - 1][0]}`;
        // Budget spent with the page not full: hand back a cursor so the caller can go on.
        if (scanned >= budget) return { entries: out, nextBefore: rows[rows.length - 1][0] };
      }
    } catch (err) {
      throw toStoreError('audit list', err);
    }
  }

  async close(): Promise<void> {
    // The client is shared with the key store, which closes it.
  }

  private serviceStream(service: string): string {
    return `${this.p}audit:s:${service}`;
  }
}

function decode(id: string, flat: string[]): AuditEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
  let detail: Record<string, string> = {};
  try {
    detail = JSON.parse(f.d ?? '{}');
  } catch {
    // a damaged entry keeps its other fields
  }
  return { id, time: Number(id.split('-')[0]), service: f.s ?? '', keyId: f.k ?? '', type: f.y ?? '', actor: f.a ?? '', detail };
}
