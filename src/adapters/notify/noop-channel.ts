import type { WireEvent } from '../../ports/event-transport';
import type { NotificationChannel } from '../../ports/notification-channel';

/**
 * A channel that does nothing. The route channel `nats` is one: every event is published on the
 * NATS stream anyway, so naming it in a route only documents that (and keeps a route that sends
 * some events nowhere else valid).
 */
export class NoopChannel implements NotificationChannel {
  constructor(readonly name: string) {}

  async send(_events: readonly WireEvent[]): Promise<void> {}
}
