import { createHash } from 'node:crypto';
import type { Clock } from '../domain/clock';
import { ConflictError, FencedError, NotFoundError, StoreUnavailableError } from '../domain/errors';
import type { EventType } from '../domain/events';
import { formatUlid } from '../domain/key-id';
import type { KeyRecord } from '../domain/key-record';
import type { Policy } from '../domain/policy';
import { applyStep, dueSteps, nextDueAt, withDueAt, type LifecycleStep } from '../domain/rotation';
import type { Logger } from '../logger';
import type { Fence, KeyStore } from '../ports/key-store';
import type { Lease } from '../ports/lease';
import type { PolicyStore } from '../ports/policy-store';
import { casBackoff } from './cas-retry';
import { rotationEventsPending, type KeyAdmin, type KeyChange } from './key-admin';
import type { LifecycleEffects } from './key-change-effects';

/*
 * The lifecycle scheduler: expires keys, retires superseded keys at the end of their grace
 * period, sends `notify` notices, and rotates keys of `auto` policies (see domain/rotation.ts for
 * the steps). It runs in every sidecar; a lease (`scheduler`) makes one act at a time.
 *
 * Cost. A tick reads `store.due(now, batch)`, an index by due time, so a tick over a million keys
 * of which none is due is one index read. Due keys are taken in batches, at most
 * `maxBatchesPerTick` a tick, so a backlog (10k keys expiring at once) drains over a few ticks.
 *
 * Exclusion. Every write of the scheduler is fenced ({lease: 'scheduler', value}) and a
 * compare-and-set on the record's version: a scheduler that paused past its lease cannot write
 * after another took over (FencedError stops its tick), and a concurrent admin write makes the
 * step retry from a fresh read, where the step may no longer be due (`applyStep` is idempotent).
 * A rotation is one atomic store write (`KeyStore.rotate`) of a record that must still be
 * un-rotated at the version read, so two schedulers can never both rotate a key.
 *
 * Events exactly once across crashes. A step's events get ids derived from (key id, step, due
 * time) (`stepEventId`: `evt_` + the due time as a ULID time + a hash, so they still sort by
 * time), and the outbox and audit appends drop an id seen before. For a step that is a plain
 * record change, the events are written BEFORE the record: a crash between the two leaves the
 * step due, the next run emits the same ids (dropped as duplicates) and then writes the record;
 * a crash after both leaves nothing to do. A rotation cannot go that way round (the successor
 * does not exist before the write), so the rotation write itself marks the superseded record
 * "events pending" (`dueAt === rotatedAt`, see `rotationEventsPending`): the key stays due, and
 * whoever finds it so emits `key.created` + `key.rotated` (ids derived from the rotation time)
 * and then clears the mark. Idempotent ids cover the gap between emitting and clearing. (An
 * admin update of the superseded key inside that gap recomputes its `dueAt` and so drops the
 * mark: its `key.rotated` is then lost, though the rotation itself and `key.updated` are not.)
 *
 * Policies are read from the policy store at each tick (not a cache), once per policy per
 * tick. When a policy changes, keys it governs may carry a stale `dueAt`:
 * - too early: the scheduler finds the key with nothing due, and rewrites its `dueAt`;
 * - too late or missing (a shorter max age, a new rotation rule, a new service default): every
 *   sidecar hears the `policy.*` event and queues a recompute of the service
 *   (`recompute(service)`); the lease holder pages through the service's keys, a bounded number
 *   a tick, rewriting `dueAt` where it changed (idempotent, so the job is simply restarted from
 *   the first key when another change comes, or when a new holder takes over with the job
 *   queued too). The jobs live in memory: a fleet restarted as a whole forgets them (re-save the
 *   policy to run it again). A key written by an admin call in the instant between a policy
 *   change and the recompute's pass over it can keep a due time computed from the old policy.
 */

/** Counts since start, for logs, tests and the metrics endpoint. */
export interface SchedulerStats {
  ticks: number;
  /** Ticks in which this instance held the lease. */
  ticksLeading: number;
  /** Batches of due keys read. */
  batches: number;
  /** Lifecycle steps done, by step. */
  steps: Record<LifecycleStep, number>;
  /** Keys whose `dueAt` was rewritten (stale after a policy change). */
  recomputed: number;
  /** Keys set aside for a while because a step could not be done (see logs). */
  deferred: number;
  /** Ticks that stopped because the lease was lost (FencedError) or the store failed. */
  aborted: number;
}

export interface TickResult {
  readonly leading: boolean;
  /** Sizes of the due batches read this tick. */
  readonly batchSizes: readonly number[];
  readonly steps: number;
}

export interface LifecycleSchedulerOptions {
  store: KeyStore;
  policies?: PolicyStore;
  admin: KeyAdmin;
  lease: Lease;
  effects: LifecycleEffects;
  clock: Clock;
  logger: Logger;
  /** Time between ticks. Default 1s. */
  intervalMs?: number;
  /** Keys per due batch. Default 500. */
  batchSize?: number;
  /** Batches per tick at most. Default 4. */
  maxBatchesPerTick?: number;
  /** Lease TTL; renewed each tick. Default max(5 × interval, 5s). */
  leaseTtlMs?: number;
  /** How long a key whose step failed is left aside before the next attempt. Default 60s. */
  deferMs?: number;
}

const ACTOR = 'keyward';
/** Write conflicts (concurrent admin writes) on one key before it is left for the next tick. */
const MAX_CONFLICTS_PER_KEY = 5;
/** Steps done for one key in one visit at most (a key has at most four pending). */
const MAX_STEPS_PER_KEY = 8;

/** A step stopped being due while it was being done (another writer got there first). */
class StepGone extends Error {}

export class LifecycleScheduler {
  private readonly opts: Required<Omit<LifecycleSchedulerOptions, 'policies'>> & Pick<LifecycleSchedulerOptions, 'policies'>;
  private readonly stats_: SchedulerStats = {
    ticks: 0,
    ticksLeading: 0,
    batches: 0,
    steps: { retire: 0, expire: 0, rotation_notice: 0, expire_at_max_age: 0, auto_rotate: 0 },
    recomputed: 0,
    deferred: 0,
    aborted: 0,
  };
  /** Recompute jobs by service: the last key id done (undefined: from the start). */
  private readonly jobs = new Map<string, { after?: string }>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(opts: LifecycleSchedulerOptions) {
    const intervalMs = opts.intervalMs ?? 1_000;
    this.opts = {
      intervalMs,
      batchSize: 500,
      maxBatchesPerTick: 4,
      leaseTtlMs: Math.max(5 * intervalMs, 5_000),
      deferMs: 60_000,
      ...opts,
    };
    for (const [name, v] of [['intervalMs', this.opts.intervalMs], ['batchSize', this.opts.batchSize], ['maxBatchesPerTick', this.opts.maxBatchesPerTick]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
  }

  stats(): SchedulerStats {
    return { ...this.stats_, steps: { ...this.stats_.steps } };
  }

  /** Whether this instance holds the scheduler lease now. */
  leading(): boolean {
    return this.opts.lease.holds();
  }

  /** A policy of `service` changed: its keys' due times are recomputed (see the file comment). */
  recompute(service: string): void {
    this.jobs.set(service, {}); // restart: the policy may have changed again since a pass began
  }

  /** Services with a recompute job queued. */
  pendingRecomputes(): string[] {
    return [...this.jobs.keys()];
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    const loop = (): void => {
      this.running = this.tick()
        .catch((err: unknown) => this.opts.logger.warn({ err }, 'lifecycle scheduler tick failed'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(loop, this.opts.intervalMs).unref();
        });
    };
    this.timer = setTimeout(loop, this.opts.intervalMs).unref();
  }

  /** Stops ticking, waits for a running tick, and gives the lease up so another sidecar takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.opts.lease.release().catch((err: unknown) => this.opts.logger.debug({ err }, 'scheduler lease not released'));
  }

  /** One tick: take or renew the lease, work through due keys, then recompute jobs. */
  async tick(): Promise<TickResult> {
    this.stats_.ticks++;
    const { lease, store, batchSize, maxBatchesPerTick } = this.opts;
    const batchSizes: number[] = [];
    let steps = 0;
    if (!(await lease.tryAcquire(this.opts.leaseTtlMs))) return { leading: false, batchSizes, steps };
    this.stats_.ticksLeading++;
    const policies = new PolicyMemo(this.opts.policies);
    const skipped = new Set<string>();
    try {
      let batches = 0;
      for (; batches < maxBatchesPerTick; batches++) {
        const fence = this.fence();
        const now = this.opts.clock.now();
        const ids = (await store.due(now, batchSize)).filter((id) => !skipped.has(id));
        this.stats_.batches++;
        batchSizes.push(ids.length);
        for (const id of ids) {
          const done = await this.visit(id, now, fence, policies);
          if (done < 0) skipped.add(id);
          else steps += done;
        }
        if (ids.length < batchSize) break;
      }
      await this.recomputeSome(Math.max(1, maxBatchesPerTick - batches), policies);
    } catch (err) {
      this.stats_.aborted++;
      if (err instanceof FencedError || err instanceof LeaseLost) {
        this.opts.logger.info({ err: err.message }, 'scheduler lease lost; another sidecar carries on');
      } else throw err;
    }
    if (steps > 0) this.opts.logger.debug({ steps, batchSizes }, 'lifecycle scheduler tick');
    return { leading: true, batchSizes, steps };
  }

  private fence(): Fence {
    const value = this.opts.lease.holder();
    if (value === undefined) throw new LeaseLost('the scheduler lease expired during the tick');
    return { lease: this.opts.lease.name, value };
  }

  /**
   * Does every step due for one key. Returns the number of steps done, or -1 when the key was
   * set aside (deferred, or left for the rest of the tick). Throws FencedError / LeaseLost /
   * StoreUnavailableError, which end the tick.
   */
  private async visit(id: string, now: number, fence: Fence, policies: PolicyMemo): Promise<number> {
    let done = 0;
    let conflicts = 0;
    let record = await this.opts.store.getById(id);
    for (let i = 0; record !== undefined && i < MAX_STEPS_PER_KEY; i++) {
      try {
        const policy = await policies.effective(record);
        const next = await this.advance(record, policy, now, fence);
        if (next === undefined) return done;
        record = next;
        done++;
      } catch (err) {
        if (err instanceof ConflictError || err instanceof StepGone) {
          if (++conflicts >= MAX_CONFLICTS_PER_KEY) return -1;
          await casBackoff(conflicts);
          record = await this.opts.store.getById(id);
          continue;
        }
        if (err instanceof NotFoundError) return done; // deleted meanwhile
        if (err instanceof FencedError || err instanceof LeaseLost || err instanceof StoreUnavailableError) throw err;
        await this.defer(record, now, fence, err);
        return -1;
      }
    }
    return done;
  }

  /**
   * Does the first step due (or the pending events of an automatic rotation); returns the
   * record as written, or undefined when nothing is due (after fixing a stale `dueAt`).
   */
  private async advance(record: KeyRecord, policy: Policy | undefined, now: number, fence: Fence): Promise<KeyRecord | undefined> {
    const { store, effects } = this.opts;
    if (rotationEventsPending(record)) return this.finishRotation(record, policy, fence);
    // A key past its expiry is expired, not rotated (the scheduler was down past both times).
    const expired = record.expiresAt !== undefined && now >= record.expiresAt;
    const step = dueSteps(record, policy, now).find((s) => !(s.step === 'auto_rotate' && expired));
    if (step === undefined) {
      const dueAt = nextDueAt(record, policy);
      if (dueAt !== record.dueAt) {
        // Stale (a policy changed): the key would be found again and again.
        await store.replace({ ...withDueAt(record, policy), version: record.version + 1 }, record.version, { fence });
        this.stats_.recomputed++;
      }
      return undefined;
    }
    if (step.step === 'auto_rotate') {
      const { retired } = await this.opts.admin.rotateRecord(record, { actor: ACTOR, seal: true, fence, deferEvents: true }, async (id) => {
        const fresh = await store.getById(id);
        if (fresh === undefined || !dueSteps(fresh, policy, now).some((s) => s.step === 'auto_rotate')) throw new StepGone();
        return fresh;
      });
      this.stats_.steps.auto_rotate++;
      return this.finishRotation(retired, policy, fence);
    }
    const next = withDueAt(applyStep(record, policy, step.step, now), policy);
    if (next === record) throw new StepGone();
    const change = changeOf(step.step, next, step.at, policy);
    if (change !== undefined) await effects.emit(change, (type, i) => stepEventId(record.id, step.step, step.at, type, i));
    await store.replace(next, record.version, { fence });
    if (change !== undefined) effects.cached(change);
    this.stats_.steps[step.step]++;
    return next;
  }

  /** Emits a scheduler rotation's events (idempotent ids), then clears the "events pending" mark. */
  private async finishRotation(retired: KeyRecord, policy: Policy | undefined, fence: Fence): Promise<KeyRecord> {
    const { store, effects } = this.opts;
    const successor = await store.getById(retired.rotatedTo!);
    if (successor !== undefined) {
      const change: KeyChange = { kind: 'rotated', record: retired, successor, actor: ACTOR, sealed: true };
      await effects.emit(change, (type, i) => stepEventId(retired.id, 'auto_rotate', retired.rotatedAt!, type, i));
      effects.cached(change);
    } // else: the successor was deleted already; its own deletion was announced
    const cleared = { ...withDueAt(retired, policy), version: retired.version + 1 };
    await store.replace(cleared, retired.version, { fence });
    return cleared;
  }

  /** Sets a key aside for `deferMs` (its step failed), so it does not hold up the keys behind it. */
  private async defer(record: KeyRecord | undefined, now: number, fence: Fence, err: unknown): Promise<void> {
    this.stats_.deferred++;
    this.opts.logger.warn({ err, keyId: record?.id }, `lifecycle step failed; retrying the key in ${Math.round(this.opts.deferMs / 1000)}s`);
    // A record whose rotation events are pending keeps its mark (dueAt === rotatedAt): moving its
    // due time would drop the events. It stays due and is retried next tick.
    if (record === undefined || rotationEventsPending(record)) return;
    try {
      await this.opts.store.replace({ ...record, dueAt: now + this.opts.deferMs, version: record.version + 1 }, record.version, { fence });
    } catch (e) {
      if (e instanceof FencedError || e instanceof StoreUnavailableError) throw e;
      // A concurrent write: the key is seen again with its new due time.
    }
  }

  /** Recompute jobs, `batches` pages of keys at most. Only the lease holder writes. */
  private async recomputeSome(batches: number, policies: PolicyMemo): Promise<void> {
    for (const [service, job] of this.jobs) {
      if (batches <= 0) return;
      while (batches-- > 0) {
        const fence = this.fence();
        const page = await this.opts.store.list({ service, limit: this.opts.batchSize, after: job.after });
        for (const r of page.records) {
          if (rotationEventsPending(r)) continue; // the due pass handles it
          const policy = await policies.effective(r);
          if (nextDueAt(r, policy) === r.dueAt) continue;
          try {
            await this.opts.store.replace({ ...withDueAt(r, policy), version: r.version + 1 }, r.version, { fence });
            this.stats_.recomputed++;
          } catch (err) {
            if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
            // Written meanwhile by a writer that computed dueAt itself.
          }
        }
        if (this.jobs.get(service) !== job) break; // restarted while we worked
        if (page.nextAfter === undefined) {
          this.jobs.delete(service);
          break;
        }
        job.after = page.nextAfter;
      }
    }
  }
}

class LeaseLost extends Error {}

/** The lifecycle change a step announces; `expire_at_max_age` only sets the expiry, which the `expire` step then announces. */
function changeOf(step: Exclude<LifecycleStep, 'auto_rotate'>, next: KeyRecord, at: number, policy: Policy | undefined): KeyChange | undefined {
  switch (step) {
    case 'retire':
      return { kind: 'updated', record: next, actor: ACTOR, changedFields: ['state'] };
    case 'expire':
      return { kind: 'expired', record: next, actor: ACTOR };
    case 'rotation_notice':
      return { kind: 'rotation_due', record: next, actor: ACTOR, dueAt: at + (policy?.rotation?.noticeMs ?? 0) };
    case 'expire_at_max_age':
      return undefined;
  }
}

/**
 * The id of the `index`-th event of a lifecycle step: `evt_` + a ULID whose time is the step's
 * due time and whose random part is a hash of (key, step, due time, type, index). The same step
 * always gets the same ids, so re-emitting it is dropped by the idempotent appends.
 */
export function stepEventId(keyId: string, step: LifecycleStep, at: number, type: EventType, index: number): string {
  return formatUlid('evt', at, createHash('sha256').update(`${keyId}|${step}|${at}|${type}|${index}`).digest());
}

/** Effective policies read once per tick: a key's own, else its service's default. */
class PolicyMemo {
  private readonly policies = new Map<string, Promise<Policy | undefined>>();
  private readonly defaults = new Map<string, Promise<string | undefined>>();

  constructor(private readonly store: PolicyStore | undefined) {}

  async effective(record: KeyRecord): Promise<Policy | undefined> {
    if (this.store === undefined) return undefined;
    const store = this.store;
    let id = record.policyId;
    if (id === undefined) {
      let d = this.defaults.get(record.service);
      if (d === undefined) this.defaults.set(record.service, (d = store.getServiceDefault(record.service)));
      id = await d;
      if (id === undefined) return undefined;
    }
    let p = this.policies.get(id);
    if (p === undefined) this.policies.set(id, (p = store.getPolicy(id)));
    const policy = await p;
    // A missing policy (or one of another service) has no rotation rule: expiry and grace still apply.
    return policy?.service === record.service ? policy : undefined;
  }
}
