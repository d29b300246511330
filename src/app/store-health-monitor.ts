import type { Logger } from '../logger';
import type { KeyStore } from '../ports/key-store';

export interface StoreHealthMonitorOptions {
  store: Pick<KeyStore, 'ping'>;
  logger: Logger;
  intervalMs: number;
  /** Called with true when the store becomes reachable, false when it stops answering. */
  onChange: (reachable: boolean) => void;
}

/**
 * Pings the store on an interval and reports transitions, so readiness goes NOT_SERVING while
 * the store is unreachable (Kubernetes then stops routing to the pod) and back when it returns.
 * Reconnecting is the store client's job; this only watches.
 */
export class StoreHealthMonitor {
  private reachable: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: StoreHealthMonitorOptions;

  constructor(opts: StoreHealthMonitorOptions) {
    this.opts = opts;
  }

  get isReachable(): boolean {
    return this.reachable === true;
  }

  /** Checks once now, then on every interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<boolean> {
    let ok: boolean;
    try {
      await this.opts.store.ping();
      ok = true;
    } catch (err) {
      ok = false;
      if (this.reachable !== false) this.opts.logger.error({ err }, 'key store unreachable: readiness is NOT_SERVING');
    }
    if (ok !== this.reachable) {
      if (ok && this.reachable === false) this.opts.logger.info('key store reachable again: readiness is SERVING');
      this.reachable = ok;
      this.opts.onChange(ok);
    }
    return ok;
  }
}
