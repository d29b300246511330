import type { EventType, Priority } from '../domain/events';

/**
 * An event in its wire form: the proto JSON of `keyward.v1.Event` (`body`) plus the fields
 * routing needs. Made only by `codec/event-codec.ts`, so it never holds a key's hash
 * or secret.
 */
export interface WireEvent {
  readonly id: string;
  readonly type: EventType;
  readonly time: number;
  readonly service: string;
  readonly keyId: string;
  readonly priority: Priority;
  /** JSON text of the proto `Event`, exactly as published and posted. */
  readonly body: string;
  /**
   * W3C `traceparent` of the operation that caused the event (captured when it was made), sent
   * as a NATS message header so the consumers' spans link to the cause.
   */
  readonly traceparent?: string;
}

export interface Subscription {
  close(): Promise<void>;
}

/**
 * Carries events between sidecars: NATS JetStream, or in-process when no NATS is configured.
 */
export interface EventTransport {
  /** Publishes one event; resolves once the transport has durably accepted it (JetStream ack). */
  publish(event: WireEvent): Promise<void>;
  /**
   * Every event, to every sidecar, in order (cache invalidation). After a disconnect the
   * subscription resumes after the last event it saw, so nothing is missed.
   */
  subscribeAll(handler: (event: WireEvent) => void): Promise<Subscription>;
  /**
   * Each event to exactly one sidecar of the fleet (notifications); an event whose handler
   * rejects is redelivered later.
   */
  subscribeShared(handler: (event: WireEvent) => Promise<void>): Promise<Subscription>;
  /** Resolves when the transport is connected, rejects when it is not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
