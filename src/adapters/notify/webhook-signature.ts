import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * How keyward signs webhook requests, and how a receiver checks them.
 *
 * Every POST carries:
 *
 *   Keyward-Timestamp: 1732212345                      (unix seconds when this attempt was sent)
 *   Keyward-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *
 * where the hex is HMAC-SHA256, keyed with the webhook's secret (its UTF-8 bytes), of the string
 * `<timestamp>.<raw body>`: the header's digits, one `.`, then the request body exactly as
 * received, byte for byte (verify before parsing; a re-serialized JSON body will not match).
 * Each attempt, retries included, is signed afresh with its own timestamp.
 *
 * A receiver:
 *   1. reads `Keyward-Timestamp`; rejects the request unless it is all digits and within
 *      5 minutes (300 s) of its own clock, either way. This stops an attacker who captured one
 *      request from replaying it later;
 *   2. computes `v1=` + hex HMAC-SHA256(secret, timestamp + "." + rawBody);
 *   3. compares it with each comma-separated entry of `Keyward-Signature` in constant time
 *      (`crypto.timingSafeEqual` on equal-length buffers, `hmac.compare_digest` in Python), and
 *      accepts when one matches. Entries with another version prefix are ignored, so a later
 *      scheme (or a second signature during a secret rotation) can be added without breaking
 *      receivers;
 *   4. de-duplicates by event id (`Keyward-Event-Id` / each event's `id`): delivery is
 *      at-least-once.
 *
 * `verifyWebhookSignature` below is that procedure, for receivers written in Node.
 */
export const WEBHOOK_HEADERS = {
  eventId: 'Keyward-Event-Id',
  timestamp: 'Keyward-Timestamp',
  signature: 'Keyward-Signature',
} as const;

export const SIGNATURE_SCHEME = 'v1';
/** How far a receiver should let a request's timestamp be from its own clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export function signWebhook(secret: string | KeyObject, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `${SIGNATURE_SCHEME}=${mac}`;
}

export interface VerifyWebhookInput {
  secret: string | KeyObject;
  /** The raw request body, exactly as received. */
  body: string | Buffer;
  /** The `Keyward-Timestamp` header. */
  timestamp: string | undefined;
  /** The `Keyward-Signature` header. */
  signature: string | undefined;
  /** The receiver's clock, ms since the epoch. Default `Date.now()`. */
  now?: number;
  toleranceSeconds?: number;
}

/** True when the signature matches and the timestamp is fresh; see the procedure above. */
export function verifyWebhookSignature(input: VerifyWebhookInput): boolean {
  const { timestamp, signature } = input;
  if (timestamp === undefined || signature === undefined || !/^\d{1,15}$/.test(timestamp)) return false;
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(timestamp)) > (input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const mac = createHmac('sha256', input.secret).update(`${timestamp}.`).update(input.body).digest();
  let ok = false;
  for (const entry of signature.split(',')) {
    const [scheme, hex] = entry.trim().split('=', 2);
    if (scheme !== SIGNATURE_SCHEME || hex === undefined || !/^[0-9a-f]{64}$/i.test(hex)) continue;
    if (timingSafeEqual(mac, Buffer.from(hex, 'hex'))) ok = true; // no early exit
  }
  return ok;
}
