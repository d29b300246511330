import type { Logger } from '../../logger';
import type { NotificationChannel } from '../../ports/notification-channel';
import type { DeadLetterStore } from './dead-letter-store';
import { LogChannel } from './log-channel';
import { NoopChannel } from './noop-channel';
import { WebhookChannel } from './webhook-channel';

export interface NotificationChannelsOptions {
  /** As `parseNotificationSettings` returns them. */
  webhooks: readonly { name: string; url: string; secret: string; timeoutMs: number; maxAttempts: number }[];
  deadLetters: DeadLetterStore;
  logger: Logger;
  /** How long each webhook's `close()` waits for pending deliveries (fit it into the shutdown timeout). Default 10 000. */
  closeTimeoutMs?: number;
  /** Told when a webhook delivery finishes (keyward_webhook_deliveries_total). */
  onWebhookDelivery?: (channel: string, result: string) => void;
}

/**
 * Every channel routes may name: `log` (a LogChannel), `nats` (a no-op: the NATS stream gets
 * every event anyway) and one WebhookChannel per configured webhook.
 */
export function createNotificationChannels(opts: NotificationChannelsOptions): Map<string, NotificationChannel> {
  const channels = new Map<string, NotificationChannel>([
    ['log', new LogChannel({ logger: opts.logger })],
    ['nats', new NoopChannel('nats')],
  ]);
  for (const w of opts.webhooks) {
    if (channels.has(w.name)) throw new RangeError(`notification channel name ${w.name} is taken`);
    channels.set(
      w.name,
      new WebhookChannel({
        name: w.name,
        url: w.url,
        secret: w.secret,
        timeoutMs: w.timeoutMs,
        maxAttempts: w.maxAttempts,
        closeTimeoutMs: opts.closeTimeoutMs,
        deadLetters: opts.deadLetters,
        logger: opts.logger,
        onDelivery: opts.onWebhookDelivery && ((result) => opts.onWebhookDelivery!(w.name, result)),
      }),
    );
  }
  return channels;
}
