import type { Logger } from '../../logger';
import type { WireEvent } from '../../ports/event-transport';
import type { NotificationChannel } from '../../ports/notification-channel';

export interface LogChannelOptions {
  logger: Logger;
  /** Default `log`, the built-in channel name of routes. */
  name?: string;
}

/** The fields a log line carries; nothing else from the body is ever logged. */
export interface LoggedEvent {
  id: string;
  type: string;
  service: string;
  keyId: string;
  priority: string;
  actor?: string;
}

/**
 * Writes each event as one structured info line, `{"event":{id,type,service,keyId,priority,actor},
 * "msg":"keyward event"}`, for log pipelines that alert on events. Only those fields are logged:
 * not the key record in the payload (bodies hold no secret, but owners' metadata stays out of logs).
 */
export class LogChannel implements NotificationChannel {
  readonly name: string;
  private readonly logger: Logger;

  constructor(opts: LogChannelOptions) {
    this.name = opts.name ?? 'log';
    this.logger = opts.logger;
  }

  async send(events: readonly WireEvent[]): Promise<void> {
    for (const e of events) this.logger.info({ event: loggedEvent(e) }, 'keyward event');
  }
}

export function loggedEvent(e: WireEvent): LoggedEvent {
  const out: LoggedEvent = { id: e.id, type: e.type, service: e.service, keyId: e.keyId, priority: e.priority };
  const actor = readActor(e.body);
  if (actor !== undefined) out.actor = actor;
  return out;
}

/** The body's `actor`, or undefined when the body is not JSON or has none. */
function readActor(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { actor?: unknown }).actor === 'string') {
      return (parsed as { actor: string }).actor;
    }
  } catch {
    // not ours to judge here: the log line goes out without the actor
  }
  return undefined;
}
