import type { ClientDuplexStream } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import type { ValidateKeyStreamRequest, ValidateKeyStreamResponse } from '../src/gen/keyward/v1/key_service.pb';
import { startNats } from '../test/support/nats-server';
import { createKeyWithId, validationRequest, type BenchContext } from './context';
import { adminPb, keyServicePb } from './dist-modules';
import { scrapeCounter } from './metrics-scrape';
import { sleep } from './processes';
import { f2, int, ms3 } from './report-format';
import { defineScenario, targetList } from './scenario';
import { startKeyward, unary, type KeywardProcess } from './server-processes';
import { quantile } from './stats';

/**
 * Issue 4: revocation propagation. Four sidecars share one redis-server (the bench's) and one
 * `nats-server -js` (started here), with KEYWARD_CACHE_TTL=1h so that only events can tell a
 * sidecar that a key changed. N keys are created through sidecar 1 and validated once on every
 * sidecar (cached everywhere). Then, one key at a time: RevokeKey through sidecar 1; from the
 * moment its answer arrives, each of sidecars 2-4 is polled back to back over its own
 * ValidateKeyStream (one request in flight) until it answers REVOKED. The figure is that time,
 * per sidecar per key. A NATS subscriber in the bench process notes when each key.revoked event
 * is on NATS, which splits the time into "outbox → relay → JetStream" and "NATS → sidecar
 * invalidates → next validation reads Redis". Keys are revoked REVOKE_PAUSE_MS apart, so each
 * propagation is measured alone.
 */
export interface RevocationResults {
  sidecars: number;
  keys: number;
  /** Sidecars polled for each key (all but the one revoking). */
  observers: number;
  samples: number;
  /** Revoke answered → REVOKED, per sidecar per key, ms. */
  propagation: Percentiles;
  perSidecar: ({ name: string } & Percentiles)[];
  /** Revoke answered → the key.revoked event seen on NATS (negative: before the answer). */
  toNats: Percentiles;
  /** Event seen on NATS → REVOKED (invalidation, then a Redis read by the next validation). */
  natsToRevoked: Percentiles;
  /** RevokeKey call latency at the client. */
  revokeCall: Percentiles;
  /** One poll's round trip (the measurement's resolution). */
  pollRtt: Percentiles;
  /** Polls that timed out (never REVOKED within PROPAGATION_TIMEOUT_MS). */
  timeouts: number;
  /** The sidecar whose relay published the events (most keyward_events_published_total). */
  relayLeader: string;
  revokedThrough: string;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

const SIDECARS = 4;
const SERVICE = 'bench-revoke';
const REVOKE_PAUSE_MS = 20;
const PROPAGATION_TIMEOUT_MS = 5_000;

function percentiles(values: readonly number[]): Percentiles {
  return {
    p50: quantile(values, 0.5),
    p99: quantile(values, 0.99),
    max: quantile(values, 1),
    mean: values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length,
  };
}

/** A ValidateKeyStream with one request in flight at a time: ask, await the answer. */
class StreamPoller {
  private readonly call: ClientDuplexStream<ValidateKeyStreamRequest, ValidateKeyStreamResponse>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: ValidateKeyStreamResponse): void; reject(e: Error): void }>();
  private closing = false;

  constructor(readonly kw: KeywardProcess) {
    this.call = kw.keys.validateKeyStream();
    this.call.on('data', (answer: ValidateKeyStreamResponse) => {
      const w = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      w?.resolve(answer);
    });
    this.call.on('error', (err: Error) => {
      if (this.closing) return;
      for (const w of this.waiting.values()) w.reject(new Error(`${kw.name}: ValidateKeyStream failed: ${err.message}`));
      this.waiting.clear();
    });
  }

  ask(request: ValidateKeyStreamRequest['request']): Promise<ValidateKeyStreamResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.call.write(keyServicePb.ValidateKeyStreamRequest.fromPartial({ id, request }));
    });
  }

  /** Polls until the answer has `code`; returns when it arrived, and the polls' round trips. */
  async until(request: ValidateKeyStreamRequest['request'], code: number, deadline: number): Promise<{ at: number; rtts: number[] } | undefined> {
    const rtts: number[] = [];
    for (;;) {
      const t = performance.now();
      const answer = await this.ask(request);
      const now = performance.now();
      rtts.push(now - t);
      const got = answer.response?.code;
      if (answer.error !== undefined) throw new Error(`${this.kw.name}: ${JSON.stringify(answer.error)}`);
      if (got === code) return { at: now, rtts };
      if (got !== keyServicePb.ValidationCode.VALIDATION_CODE_VALID) throw new Error(`${this.kw.name}: unexpected answer ${JSON.stringify(answer.response)}`);
      if (now > deadline) return undefined;
    }
  }

  close(): void {
    this.closing = true;
    this.call.end();
  }
}

export async function benchRevocation(ctx: BenchContext): Promise<RevocationResults> {
  const n = ctx.settings.revokeKeys;
  const nats = await startNats();
  const sidecars: KeywardProcess[] = [];
  const pollers: StreamPoller[] = [];
  let spy: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    const env = { KEYWARD_REDIS_URL: ctx.redisUrl, KEYWARD_NATS_URL: nats.url, KEYWARD_CACHE_TTL: '1h' };
    sidecars.push(...(await Promise.all(Array.from({ length: SIDECARS }, (_, i) => startKeyward(`keyward-events-${i + 1}`, { env })))));
    const [revoker, ...observers] = sidecars;

    // the bench's own view of NATS: when each key.revoked event is there
    spy = await connect({ servers: nats.url });
    const onNats = new Map<string, number>();
    const sub = spy.subscribe(`keyward.events.${SERVICE}.key.revoked`);
    void (async () => {
      for await (const m of sub) {
        const at = performance.now();
        const id = /"keyId"\s*:\s*"([^"]+)"/.exec(new TextDecoder().decode(m.data))?.[1];
        if (id !== undefined && !onNats.has(id)) onNats.set(id, at);
      }
    })();

    ctx.log(`revocation: creating ${n} keys through ${revoker.name}`);
    const keys: { id: string; secret: string }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          next++;
          keys.push(await createKeyWithId(revoker, SERVICE));
        }
      }),
    );
    await sleep(1_000); // the key.created events reach every sidecar (they do not invalidate)
    ctx.log(`revocation: validating every key once on each of the ${SIDECARS} sidecars (caches warm)`);
    for (const kw of sidecars) await validateAll(kw, keys.map((k) => k.secret));
    for (const kw of observers) pollers.push(new StreamPoller(kw));
    for (const p of pollers) await p.until(validationRequest(keys[0].secret, SERVICE), keyServicePb.ValidationCode.VALIDATION_CODE_VALID, 0);

    ctx.log(`revocation: revoking ${n} keys one at a time through ${revoker.name}, polling ${observers.map((o) => o.name).join(', ')}`);
    const all: number[] = [];
    const per = observers.map(() => [] as number[]);
    const toNats: number[] = [];
    const natsToRevoked: number[] = [];
    const revokeCall: number[] = [];
    const rtts: number[] = [];
    let timeouts = 0;
    for (const key of keys) {
      const request = validationRequest(key.secret, SERVICE);
      const t = performance.now();
      await unary(revoker.admin.revokeKey, revoker.admin, adminPb.RevokeKeyRequest.fromPartial({ keyId: key.id, reason: 'bench' }), revoker.root);
      const t0 = performance.now();
      revokeCall.push(t0 - t);
      const seen = await Promise.all(pollers.map((p) => p.until(request, keyServicePb.ValidationCode.VALIDATION_CODE_REVOKED, t0 + PROPAGATION_TIMEOUT_MS)));
      await sleep(REVOKE_PAUSE_MS);
      const natsAt = onNats.get(key.id);
      if (natsAt !== undefined) toNats.push(natsAt - t0);
      seen.forEach((s, i) => {
        if (s === undefined) {
          timeouts++;
          return;
        }
        all.push(s.at - t0);
        per[i].push(s.at - t0);
        rtts.push(...s.rtts);
        if (natsAt !== undefined) natsToRevoked.push(s.at - natsAt);
      });
    }
    const last = await unary(revoker.keys.validateKey, revoker.keys, validationRequest(keys[keys.length - 1].secret, SERVICE));
    if (last.code !== keyServicePb.ValidationCode.VALIDATION_CODE_REVOKED) throw new Error(`${revoker.name} does not answer REVOKED for a key it revoked`);
    if (toNats.length < keys.length) throw new Error(`only ${toNats.length} of ${keys.length} key.revoked events were seen on NATS`);

    const published = await Promise.all(sidecars.map((kw) => scrapeCounter(kw, 'keyward_events_published_total')));
    const leader = sidecars[published.indexOf(Math.max(...published))].name;
    const result: RevocationResults = {
      sidecars: SIDECARS,
      keys: keys.length,
      observers: observers.length,
      samples: all.length,
      propagation: percentiles(all),
      perSidecar: observers.map((o, i) => ({ name: o.name, ...percentiles(per[i]) })),
      toNats: percentiles(toNats),
      natsToRevoked: percentiles(natsToRevoked),
      revokeCall: percentiles(revokeCall),
      pollRtt: percentiles(rtts),
      timeouts,
      relayLeader: leader,
      revokedThrough: revoker.name,
    };
    const p = result.propagation;
    ctx.log(`  propagation p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms, max ${p.max.toFixed(2)} ms (${all.length} samples, ${timeouts} timeouts); relay in ${leader}`);
    return result;
  } finally {
    for (const p of pollers) p.close();
    await spy?.close();
    await Promise.all(sidecars.map((kw) => kw.stop()));
    await nats.stop();
  }
}

/** BatchValidateKeys in batches of 100; every answer must be VALID. */
async function validateAll(kw: KeywardProcess, secrets: readonly string[]): Promise<void> {
  for (let i = 0; i < secrets.length; i += 100) {
    const res = await unary(
      kw.keys.batchValidateKeys,
      kw.keys,
      keyServicePb.BatchValidateKeysRequest.fromPartial({ requests: secrets.slice(i, i + 100).map((key) => validationRequest(key, SERVICE)) }),
    );
    const bad = res.responses.filter((r) => !r.valid);
    if (bad.length > 0) throw new Error(`${kw.name}: ${bad.length} keys did not validate, e.g. ${JSON.stringify(bad[0])}`);
  }
}

const row = (label: string, p: Percentiles): string => `| ${label} | ${ms3(p.p50)} | ${ms3(p.p99)} | ${ms3(p.max)} | ${ms3(p.mean)} |`;

export const revocationScenario = defineScenario<RevocationResults>({
  name: 'revocation',
  summary: 'revocation propagation across 4 sidecars sharing Redis and NATS JetStream: RevokeKey answered → the other sidecars answer REVOKED',
  run: benchRevocation,
  targets(r) {
    const t = targetList();
    const pass = r.timeouts === 0 && r.propagation.p99 <= 50;
    t.add(
      'revocation-p99',
      `revocation propagation p99 (RevokeKey answered → REVOKED), ${r.sidecars} sidecars`,
      '≤ 50 ms',
      `${r.propagation.p99.toFixed(2)} ms${r.timeouts > 0 ? ` (${r.timeouts} timeouts)` : ''}`,
      pass,
    );
    return t.list;
  },
  render(r) {
    return [
      '### Revocation propagation (4 sidecars, one Redis, one nats-server -js)',
      '',
      `${int(r.keys)} keys revoked one at a time through ${r.revokedThrough}, ${REVOKE_PAUSE_MS} ms apart; each of the other ${r.observers} sidecars polled over its own ` +
        `ValidateKeyStream (one request in flight) from the RevokeKey answer until REVOKED: ${int(r.samples)} samples, ${r.timeouts} timeouts ` +
        `(> ${PROPAGATION_TIMEOUT_MS / 1000} s). The event relay ran in ${r.relayLeader}.`,
      '',
      '| interval | p50 | p99 | max | mean |',
      '| --- | --- | --- | --- | --- |',
      row('**RevokeKey answered → sidecar answers REVOKED**', r.propagation),
      ...r.perSidecar.map((s) => row(`&nbsp;&nbsp;${s.name}`, s)),
      row('RevokeKey answered → key.revoked seen on NATS', r.toNats),
      row('seen on NATS → sidecar answers REVOKED', r.natsToRevoked),
      row('(RevokeKey call, at the client)', r.revokeCall),
      row('(one poll round trip: the resolution)', r.pollRtt),
      '',
      `"Seen on NATS" is when a plain NATS subscriber in the bench process got the event; a negative time means before the RevokeKey answer arrived. ` +
        `Mean of the two parts: ${f2(r.toNats.mean)} + ${f2(r.natsToRevoked.mean)} ms.`,
    ];
  },
});
