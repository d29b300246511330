import { LRUCache } from 'lru-cache';
import type { Decision, ValidationCode } from '../domain/validation';
import type { Logger } from '../logger';
import type { AuditAppendOptions, AuditLog, NewAuditEntry } from '../ports/audit-log';
import { PeriodicFlush } from './periodic-flush';

/** Validation outcomes worth an audit entry: someone presented a key that is no longer good. */
const AUDITED: ReadonlySet<ValidationCode> = new Set<ValidationCode>(['REVOKED', 'EXPIRED', 'DISABLED', 'ROTATED', 'INSUFFICIENT_SCOPE', 'FORBIDDEN']);

export interface AuditRecorderOptions {
  log: AuditLog;
  logger: Logger;
  /** How often buffered validation entries are written. */
  intervalMs: number;
  /** At most one entry per key and outcome per window; the rest are counted in `suppressed`. */
  throttleMs: number;
  maxPending?: number;
}

/**
 * Writes the audit trail. Admin changes are appended at once (the caller awaits them);
 * validation outcomes come from the hot path, so they are buffered, throttled per key and
 * outcome (a client retrying a revoked key in a loop makes one entry a window, not thousands),
 * and written in one batch per interval.
 */
export class AuditRecorder {
  private pending: NewAuditEntry[] = [];
  private readonly lastLogged: LRUCache<string, { at: number; suppressed: number }>;
  private readonly opts: Required<AuditRecorderOptions>;
  private readonly flusher: PeriodicFlush;

  constructor(opts: AuditRecorderOptions) {
    this.opts = { maxPending: 10_000, ...opts };
    this.lastLogged = new LRUCache({ max: 50_000 });
    this.flusher = new PeriodicFlush(() => this.write(), opts.intervalMs);
  }

  /** Admin mutations: durable before the admin call answers. */
  append(entries: readonly NewAuditEntry[], opts?: AuditAppendOptions): Promise<void> {
    return this.opts.log.append(entries, opts);
  }

  /** Hot path: cheap unless the outcome is one to audit. */
  recordValidation(d: Decision, clientIp: string, now: number): void {
    if (!AUDITED.has(d.code) || d.record === undefined) return;
    const key = `${d.record.id}|${d.code}`;
    const seen = this.lastLogged.get(key);
    if (seen !== undefined && now - seen.at < this.opts.throttleMs) {
      seen.suppressed++;
      return;
    }
    this.lastLogged.set(key, { at: now, suppressed: 0 });
    if (this.pending.length >= this.opts.maxPending) return;
    const detail: Record<string, string> = { reason: d.reason };
    if (clientIp) detail.client_ip = clientIp;
    if (seen !== undefined && seen.suppressed > 0) detail.suppressed_since_last = String(seen.suppressed);
    this.pending.push({
      time: now,
      service: d.record.service,
      keyId: d.record.id,
      type: `validation.${d.code.toLowerCase()}`,
      actor: d.record.id,
      detail,
    });
  }

  start(): void {
    this.flusher.start();
  }

  /** Writes everything pending; concurrent calls share one write. */
  flush(): Promise<void> {
    return this.flusher.flush();
  }

  /** Stops the timer and writes what is left (on SIGTERM). */
  stop(): Promise<void> {
    return this.flusher.stop();
  }

  private async write(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.opts.log.append(batch);
    } catch (err) {
      this.opts.logger.warn({ err, entries: batch.length }, 'audit flush failed; keeping the entries for the next flush');
      this.pending = [...batch, ...this.pending].slice(0, this.opts.maxPending);
    }
  }
}
