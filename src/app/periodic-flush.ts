/**
 * Runs `write` every `intervalMs` in the background (the timer never keeps the process alive),
 * on demand, and one last time on stop. Concurrent flushes share one write, so a slow store
 * never sees overlapping batches from one sidecar.
 */
export class PeriodicFlush {
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly write: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer and writes what is left (on SIGTERM). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
  }
}
