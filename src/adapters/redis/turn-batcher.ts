import type { Redis } from 'ioredis';
import type { Socket } from 'node:net';
import type { RedisClient } from './redis-client';

/**
 * Writes the commands of one event-loop turn to Redis in one system call.
 *
 * Each command written on its own costs a write system call, and under load one turn handles
 * many validations (one HTTP/2 read carries many requests). The first hot-path command of a turn
 * corks the connection's socket; the check phase of the same turn uncorks it, so everything
 * written in that turn (by any adapter sharing the client) leaves in one writev. Nothing waits
 * longer than the rest of the turn. Standalone Redis only: a cluster writes to one socket per
 * node, and a client that is not ready is left alone.
 *
 * One batcher per client (`turnBatcherFor`), so adapters sharing a client cork its socket once.
 */
export class TurnBatcher {
  private corked: Socket | undefined;

  constructor(private readonly redis: RedisClient) {}

  /** Corks the socket until the end of this event-loop turn (no-op if already corked or not ready). */
  corkUntilTurnEnds(): void {
    if (this.corked !== undefined || this.redis.isCluster) return;
    const stream = (this.redis as Redis).stream as Socket | undefined;
    if (stream === undefined || this.redis.status !== 'ready' || !stream.writable) return;
    stream.cork();
    this.corked = stream;
    setImmediate(this.uncork);
  }

  private readonly uncork = (): void => {
    const stream = this.corked;
    this.corked = undefined;
    stream?.uncork();
  };
}

const batchers = new WeakMap<RedisClient, TurnBatcher>();

/** The client's batcher, made on first use. */
export function turnBatcherFor(redis: RedisClient): TurnBatcher {
  let b = batchers.get(redis);
  if (b === undefined) {
    b = new TurnBatcher(redis);
    batchers.set(redis, b);
  }
  return b;
}
