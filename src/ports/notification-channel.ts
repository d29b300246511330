import type { WireEvent } from './event-transport';

/**
 * A notification channel (webhook, log, ...). `send` gets one event, or a batch of low-priority
 * ones; it resolves when the channel took them (a webhook retries and dead-letters internally).
 */
export interface NotificationChannel {
  readonly name: string;
  send(events: readonly WireEvent[]): Promise<void>;
  close?(): Promise<void>;
}
