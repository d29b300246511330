import { createHmac, createSecretKey } from 'node:crypto';
import { signWebhook, verifyWebhookSignature } from '../../../../src/adapters/notify/webhook-signature';

const SECRET = 'whsec_0123456789abcdef';
const BODY = '{"id":"evt_1","type":"key.revoked"}';
const NOW = 1_732_212_345_000;
const TS = String(NOW / 1000);

describe('signWebhook', () => {
  it('is v1= plus hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret', () => {
    const expected = createHmac('sha256', SECRET).update(`${TS}.${BODY}`).digest('hex');
    expect(signWebhook(SECRET, Number(TS), BODY)).toBe(`v1=${expected}`);
    expect(signWebhook(createSecretKey(Buffer.from(SECRET)), Number(TS), BODY)).toBe(`v1=${expected}`);
  });

  it('depends on every input', () => {
    const s = signWebhook(SECRET, 1, BODY);
    expect(signWebhook(SECRET, 2, BODY)).not.toBe(s);
    expect(signWebhook(SECRET, 1, BODY + ' ')).not.toBe(s);
    expect(signWebhook(`${SECRET}x`, 1, BODY)).not.toBe(s);
  });
});

describe('verifyWebhookSignature', () => {
  const sig = signWebhook(SECRET, Number(TS), BODY);
  const ok = { secret: SECRET, body: BODY, timestamp: TS, signature: sig, now: NOW };

  it('accepts a matching, fresh request (body as string or Buffer)', () => {
    expect(verifyWebhookSignature(ok)).toBe(true);
    expect(verifyWebhookSignature({ ...ok, body: Buffer.from(BODY) })).toBe(true);
  });

  it('accepts timestamps up to 5 minutes off either way, and no more', () => {
    expect(verifyWebhookSignature({ ...ok, now: NOW + 300_000 })).toBe(true);
    expect(verifyWebhookSignature({ ...ok, now: NOW - 300_000 })).toBe(true);
    expect(verifyWebhookSignature({ ...ok, now: NOW + 301_000 })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, now: NOW - 301_000 })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, now: NOW + 10_000, toleranceSeconds: 5 })).toBe(false);
  });

  it('rejects another body, secret or timestamp, and malformed headers', () => {
    expect(verifyWebhookSignature({ ...ok, body: `${BODY} ` })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, secret: 'another-secret-0123' })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, timestamp: String(Number(TS) + 1) })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, timestamp: undefined })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, timestamp: `${TS}.5` })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, signature: undefined })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, signature: sig.slice(3) })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, signature: sig.slice(0, -2) })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, signature: sig.replace('v1=', 'v0=') })).toBe(false);
  });

  it('accepts when any v1 entry of a comma-separated list matches, ignoring other schemes', () => {
    const other = signWebhook('previous-secret-0123', Number(TS), BODY);
    expect(verifyWebhookSignature({ ...ok, signature: `${other}, ${sig}` })).toBe(true);
    expect(verifyWebhookSignature({ ...ok, signature: `v2=abc,${sig}` })).toBe(true);
    expect(verifyWebhookSignature({ ...ok, signature: other })).toBe(false);
  });
});
