import type { Logger } from '../logger';
import type { EventOutbox, OutboxEntry } from '../ports/event-outbox';
import type { EventTransport } from '../ports/event-transport';

/*
 * Moves events from the outbox to the transport, in order, each one until it is accepted:
 *
 *   read a batch after the last published entry (blocking up to `blockMs`, so an idle relay waits
 *   in Redis instead of polling) -> publish each entry in order, awaiting the transport's ack; on
 *   failure wait (exponential, up to `maxBackoffMs`) and retry the SAME entry, never the next ->
 *   ack the entry in the outbox -> next.
 *
 * An entry published but not yet acked when the relay stops (or crashes, or loses the lease) is
 * published again by the next relay; the transport de-duplicates by event id (JetStream's
 * Nats-Msg-Id window), so subscribers see it once.
 *
 * One relay at a time per outbox. With a shared (Redis) outbox every sidecar runs a relay, and
 * `lease` elects the one that publishes: it takes the lease, renews it every third of
 * `leaseTtlMs`, and publishes only while it holds it; the others try to take it at the same pace,
 * so a dead leader is replaced within about a TTL. A leader that cannot publish for two TTLs
 * (NATS unreachable from this sidecar only, say) hands the lease over. Without `lease` (memory
 * outbox, embedded mode) the relay is always the leader.
 */

/** What the relay needs of a leader lease (RedisLease implements it). */
export interface RelayLease {
  /** Takes the lease if free, or renews it if held; true when held for `ttlMs` from now. */
  tryAcquire(ttlMs: number): Promise<boolean>;
  /** Whether the lease is still held, by the local clock (conservative). */
  holds(): boolean;
  /** The fencing token of the current holding (changes with every new acquisition). */
  token(): number | undefined;
  release(): Promise<void>;
}

export interface EventRelayOptions {
  outbox: EventOutbox;
  transport: EventTransport;
  logger: Logger;
  /** Leader election for a shared outbox; omit when this relay is the only one. */
  lease?: RelayLease;
  /** Default 5000 ms. */
  leaseTtlMs?: number;
  /** Entries read at once. Default 100. */
  batchSize?: number;
  /** How long an idle read waits for new entries. Default 1000 ms. */
  blockMs?: number;
  /** First retry delay after a failed publish or read. Default 50 ms. */
  initialBackoffMs?: number;
  /** Longest retry delay. Default 2000 ms. */
  maxBackoffMs?: number;
}

export interface RelayStats {
  readonly leader: boolean;
  readonly published: number;
  readonly publishFailures: number;
  readonly lastSeq?: string;
}

const STOPPED = Symbol('stopped');

export class EventRelay {
  private readonly log: Logger;
  private readonly ttl: number;
  private readonly batch: number;
  private readonly blockMs: number;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private running = false;
  private loop?: Promise<void>;
  private leader = false;
  private leaderToken?: number;
  private renewTimer?: NodeJS.Timeout;
  private lastSeq?: string;
  /** Counts leadership terms; a batch read in an earlier term is not published. */
  private term = 0;
  private published = 0;
  private publishFailures = 0;
  /** When this leader last published (or started trying to); for handing the lease over. */
  private lastProgress = 0;
  private stopSignal!: Promise<typeof STOPPED>;
  private signalStop!: () => void;
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly opts: EventRelayOptions) {
    this.log = opts.logger.child({ component: 'event-relay' });
    this.ttl = Math.max(100, Math.floor(opts.leaseTtlMs ?? 5000));
    this.batch = Math.max(1, Math.floor(opts.batchSize ?? 100));
    this.blockMs = Math.max(0, Math.floor(opts.blockMs ?? 1000));
    this.initialBackoff = Math.max(1, opts.initialBackoffMs ?? 50);
    this.maxBackoff = Math.max(this.initialBackoff, opts.maxBackoffMs ?? 2000);
    this.resetStopSignal();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.resetStopSignal();
    this.loop = this.run().catch((err: unknown) => {
      this.log.error({ err }, 'event relay stopped unexpectedly');
      this.running = false;
    });
  }

  /**
   * Stops promptly: a blocked read is abandoned (it only reads), an in-flight publish is awaited
   * (it is bounded by the transport's timeout), then the lease is released so another sidecar
   * takes over at once.
   */
  async stop(): Promise<void> {
    if (!this.running && !this.loop) return;
    this.running = false;
    this.signalStop();
    for (const wake of [...this.sleepers]) wake();
    await this.loop;
    this.loop = undefined;
    await this.stepDown('stopping');
  }

  /**
   * For shutdown: waits up to `timeoutMs` for the entries pending now to be published, if the
   * transport is reachable. True when the outbox is empty at the end. Returns at once (false)
   * when the transport does not answer, and (true) when another sidecar holds the lease: the
   * entries are in the shared outbox, and the leader publishes them. Works whether or not the
   * relay is started.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    try {
      await this.opts.transport.ping();
    } catch (err) {
      const pending = await this.opts.outbox.size().catch(() => -1);
      this.log.warn({ err, pending }, 'event transport unreachable: pending events stay in the outbox');
      return false;
    }
    if (!this.running) return this.pumpUntil(deadline);
    while (Date.now() < deadline && this.running) {
      if (this.opts.lease && !this.leader && !(await this.tryLead())) return true;
      let size: number;
      try {
        size = await this.opts.outbox.size();
      } catch {
        size = -1;
      }
      if (size === 0) return true;
      await this.sleep(Math.min(10, Math.max(0, deadline - Date.now())));
    }
    const pending = await this.opts.outbox.size().catch(() => -1);
    this.log.warn({ pending }, 'event relay drain timed out');
    return false;
  }

  stats(): RelayStats {
    return { leader: this.isLeader(), published: this.published, publishFailures: this.publishFailures, lastSeq: this.lastSeq };
  }

  isLeader(): boolean {
    return this.opts.lease ? this.leader && this.opts.lease.holds() : true;
  }

  private async run(): Promise<void> {
    let readBackoff = this.initialBackoff;
    while (this.running) {
      if (!(await this.ensureLeader())) {
        await this.sleep(Math.floor(this.ttl / 3));
        continue;
      }
      const term = this.term;
      let entries: OutboxEntry[] | typeof STOPPED;
      try {
        const read = this.opts.outbox.read(this.lastSeq, this.batch, this.blockMs);
        read.catch(() => undefined); // abandoned on stop
        entries = await Promise.race([read, this.stopSignal]);
        readBackoff = this.initialBackoff;
      } catch (err) {
        if (!this.running) break;
        // once per outage at warn level, then quieter
        if (readBackoff === this.initialBackoff) this.log.warn({ err }, 'cannot read the event outbox; retrying');
        else this.log.debug({ err }, 'cannot read the event outbox again');
        await this.sleep(readBackoff);
        readBackoff = Math.min(readBackoff * 2, this.maxBackoff);
        continue;
      }
      if (entries === STOPPED) break;
      if (entries.length === 0) this.lastProgress = Date.now();
      for (const entry of entries) {
        if (this.term !== term || !(await this.publishOne(entry))) break;
      }
    }
  }

  /** Publishes one entry until it is accepted, then acks it. False when the relay stopped or lost the lead. */
  private async publishOne(entry: OutboxEntry): Promise<boolean> {
    let delay = this.initialBackoff;
    let failures = 0;
    for (;;) {
      if (!this.running || !this.isLeader()) return false;
      try {
        await this.opts.transport.publish(entry.event);
        break;
      } catch (err) {
        failures++;
        this.publishFailures++;
        const fields = { err, eventId: entry.event.id, seq: entry.seq, attempt: failures, retryInMs: delay };
        if (failures === 1) this.log.warn(fields, 'publishing an event failed; retrying it');
        else this.log.debug(fields, 'publishing an event failed again');
        if (this.opts.lease && Date.now() - this.lastProgress > 2 * this.ttl) {
          // maybe only this sidecar cannot reach NATS: let another one try
          await this.stepDown('cannot publish');
          await this.sleep(this.ttl);
          return false;
        }
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.maxBackoff);
      }
    }
    if (failures > 0) this.log.info({ eventId: entry.event.id, attempts: failures + 1 }, 'event published after retries');
    this.published++;
    this.lastSeq = entry.seq;
    this.lastProgress = Date.now();
    try {
      await this.opts.outbox.ack(entry.seq);
    } catch (err) {
      if (isNotLeader(err)) {
        this.log.warn({ err }, 'lost the relay lease');
        await this.stepDown('lease lost');
        return false;
      }
      // published all the same: a later ack trims this entry too (acks drop everything up to a seq)
      this.log.warn({ err, seq: entry.seq }, 'cannot ack a published event in the outbox');
    }
    return true;
  }

  /** True when this relay may publish now (taking the lease if it is free). */
  private async ensureLeader(): Promise<boolean> {
    if (!this.opts.lease) return true;
    if (this.leader && this.opts.lease.holds()) return true;
    if (this.leader) {
      this.log.warn('the relay lease lapsed');
      this.leader = false;
      this.stopRenewing();
    }
    return this.tryLead();
  }

  private async tryLead(): Promise<boolean> {
    const lease = this.opts.lease!;
    let acquired: boolean;
    try {
      acquired = await lease.tryAcquire(this.ttl);
    } catch (err) {
      this.log.debug({ err }, 'cannot take the relay lease');
      return false;
    }
    if (!acquired) return false;
    const token = lease.token();
    if (!this.leader || token !== this.leaderToken) {
      // a new term: start from the oldest entry still in the outbox (a previous leader may have
      // published entries it did not ack; the transport drops those duplicates)
      this.lastSeq = undefined;
      this.term++;
      this.lastProgress = Date.now();
      this.leaderToken = token;
      this.log.info({ token }, 'relaying the event outbox (lease taken)');
    }
    this.leader = true;
    this.startRenewing();
    return true;
  }

  private startRenewing(): void {
    if (this.renewTimer) return;
    this.renewTimer = setInterval(() => {
      void this.renew();
    }, Math.max(10, Math.floor(this.ttl / 3)));
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  private async renew(): Promise<void> {
    const lease = this.opts.lease;
    if (!lease || !this.leader) return;
    try {
      const held = await lease.tryAcquire(this.ttl);
      if (held && lease.token() === this.leaderToken) return;
      // taken by another relay, or lapsed and taken anew by this one (a new term: someone may have
      // relayed in between); either way the loop stops and, if it can, starts a new term
      this.log.warn({ retaken: held }, 'lost the relay lease');
      this.leader = false;
      this.stopRenewing();
    } catch (err) {
      // Redis unreachable: keep trying; holds() turns false when the TTL may have run out
      this.log.debug({ err }, 'cannot renew the relay lease');
    }
  }

  private async stepDown(why: string): Promise<void> {
    this.stopRenewing();
    const wasLeader = this.leader;
    this.leader = false;
    this.leaderToken = undefined;
    if (!this.opts.lease || !wasLeader) return;
    try {
      await this.opts.lease.release();
      this.log.info({ why }, 'released the relay lease');
    } catch (err) {
      this.log.warn({ err, why }, 'cannot release the relay lease; it expires on its own');
    }
  }

  /** Publishes pending entries directly (relay not running), until empty or the deadline. */
  private async pumpUntil(deadline: number): Promise<boolean> {
    this.running = true; // publishOne and sleep honour it
    try {
      while (Date.now() < deadline) {
        if (this.opts.lease && !(await this.ensureLeader())) return true;
        const entries = await this.opts.outbox.read(this.lastSeq, this.batch, 0);
        if (entries.length === 0) return true;
        for (const entry of entries) {
          if (Date.now() >= deadline) break;
          if (!(await this.publishOne(entry))) break;
        }
      }
      return (await this.opts.outbox.size()) === 0;
    } catch (err) {
      this.log.warn({ err }, 'event relay drain failed');
      return false;
    } finally {
      this.running = false;
      await this.stepDown('drained');
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private resetStopSignal(): void {
    this.stopSignal = new Promise((resolve) => {
      this.signalStop = () => resolve(STOPPED);
    });
  }
}

function isNotLeader(err: unknown): boolean {
  return err instanceof Error && err.name === 'NotLeaderError';
}
