import { join } from 'node:path';
import { startNats } from '../test/support/nats-server';
import { startRedis } from '../test/support/redis-server';
import { createKeyWithId, expectValid, validationRequest, type BenchContext } from './context';
import { adminPb, keyServicePb } from './dist-modules';
import { grpcFrame, writeFrameFile } from './grpc-frame';
import { interleavedFresh } from './interleaved';
import { scrapeCounter } from './metrics-scrape';
import { THROUGHPUT_HEADER, int, pairedRatio, ratio, throughputRow } from './report-format';
import type { ThroughputRun } from './results';
import { defineScenario, targetList } from './scenario';
import { startKeyward, unary, type KeywardProcess } from './server-processes';
import { url } from './unary-bench';

/**
 * Issue 4: publishing events must not slow the hot path. Two sidecars with the same config (a
 * Redis store of their own, cache on), except that one also has KEYWARD_NATS_URL (events to
 * NATS JetStream: relay, publish, ordered consumer, shared consumer) and the other has no NATS
 * (events in-process). Each answers cached ValidateKey for its own key under the unary h2load
 * load, interleaved. During every run the measured sidecar also changes another key
 * EVENTS_PER_SECOND times a second (UpdateKey, one key.updated event each), so events really flow
 * while it validates: through NATS, or in-process. Sidecars and their redis-servers are started
 * anew for every rep (`interleavedFresh`); the nats-server stays.
 */
export interface EventsOverheadResults {
  embedded: ThroughputRun;
  nats: ThroughputRun;
  eventsPerSecond: number;
  /** UpdateKey calls made during the runs, and keyward_events_published_total at the end. */
  updates: { embedded: number; nats: number };
  published: { embedded: number; nats: number };
}

const EVENTS_PER_SECOND = 10;
const SERVICE = 'bench-events';

export async function benchEventsOverhead(ctx: BenchContext): Promise<EventsOverheadResults> {
  const nats = await startNats();
  const updates = { embedded: 0, nats: 0 };
  const published = { embedded: 0, nats: 0 };
  try {
    // stopped in reverse order when the rep ends: the sidecars, then their redis-servers
    const runs = await interleavedFresh(ctx, 'events overhead', async (_rep, track) => {
      const redises = [track(await startRedis()), track(await startRedis())];
      const embedded = track(await startKeyward('keyward-events-embedded', { env: { KEYWARD_REDIS_URL: redises[0].url } }));
      const withNats = track(await startKeyward('keyward-events-nats', { env: { KEYWARD_REDIS_URL: redises[1].url, KEYWARD_NATS_URL: nats.url } }));

      const prepare = async (kw: KeywardProcess) => {
        const req = validationRequest((await createKeyWithId(kw, SERVICE)).secret, SERVICE);
        const file = join(ctx.outDir, `validate-${kw.name}.bin`);
        writeFrameFile(file, grpcFrame(keyServicePb.ValidateKeyRequest.encode(req).finish()));
        const answer = await expectValid(kw, req);
        const changed = (await createKeyWithId(kw, SERVICE)).id;
        return { req, file, bytes: answer.frameBytes, events: eventSource(kw, changed) };
      };
      const pe = await prepare(embedded);
      const pn = await prepare(withNats);
      return {
        contenders: [
          {
            key: 'embedded',
            name: `cached ValidateKey, Redis, events in-process (${EVENTS_PER_SECOND} events/s)`,
            serverPid: embedded.pid,
            url: url(embedded),
            dataFile: pe.file,
            expectedResponseBytes: pe.bytes,
            before: async () => pe.events.start(),
            after: async () => pe.events.stop(),
          },
          {
            key: 'nats',
            name: `cached ValidateKey, Redis, events through NATS (${EVENTS_PER_SECOND} events/s)`,
            serverPid: withNats.pid,
            helper: { pid: nats.pid, name: 'nats-server' },
            url: url(withNats),
            dataFile: pn.file,
            expectedResponseBytes: pn.bytes,
            before: async () => pn.events.start(),
            after: async () => pn.events.stop(),
          },
        ],
        finish: async () => {
          await expectValid(embedded, pe.req);
          await expectValid(withNats, pn.req);
          const natsPublished = await scrapeCounter(withNats, 'keyward_events_published_total');
          if (natsPublished < EVENTS_PER_SECOND) throw new Error(`the NATS sidecar published only ${natsPublished} events`);
          published.embedded += await scrapeCounter(embedded, 'keyward_events_published_total');
          published.nats += natsPublished;
          updates.embedded += pe.events.made();
          updates.nats += pn.events.made();
        },
      };
    });
    ctx.log(`  events published: in-process ${published.embedded}, NATS ${published.nats}`);
    return { embedded: runs.embedded, nats: runs.nats, eventsPerSecond: EVENTS_PER_SECOND, updates, published };
  } finally {
    await nats.stop();
  }
}

/**
 * UpdateKey on `keyId` EVENTS_PER_SECOND times a second between start() and stop(), one call
 * at a time (a tick is skipped while the previous call runs: concurrent updates of one key would
 * conflict). A failed call fails the run at stop().
 */
function eventSource(kw: KeywardProcess, keyId: string): { start(): void; stop(): Promise<void>; made(): number } {
  let timer: NodeJS.Timeout | undefined;
  let n = 0;
  let inFlight: Promise<void> | undefined;
  let failure: Error | undefined;
  return {
    start() {
      failure = undefined;
      timer = setInterval(() => {
        if (inFlight !== undefined) return;
        inFlight = unary(kw.admin.updateKey, kw.admin, adminPb.UpdateKeyRequest.fromPartial({ keyId, name: `changed ${++n}`, updateMask: ['name'] }), kw.root).then(
          () => {
            inFlight = undefined;
          },
          (err: Error) => {
            failure ??= err;
            inFlight = undefined;
          },
        );
      }, 1000 / EVENTS_PER_SECOND);
    },
    async stop() {
      clearInterval(timer);
      await inFlight;
      if (failure) throw new Error(`${kw.name}: UpdateKey during the run failed: ${failure.message}`);
    },
    made: () => n,
  };
}

export const eventsOverheadScenario = defineScenario<EventsOverheadResults>({
  name: 'events-overhead',
  summary: 'cached ValidateKey of a sidecar with NATS vs the same sidecar with in-process events, events flowing',
  run: benchEventsOverhead,
  targets(r) {
    const t = targetList();
    const v = pairedRatio(r.nats, r.embedded);
    t.add('events-nats-overhead', 'cached ValidateKey with NATS connected vs without (in-process events)', '≥ 0.95×', ratio(v), v >= 0.95);
    return t.list;
  },
  render(r) {
    return [
      '### Events: NATS connected vs in-process (cached ValidateKey)',
      '',
      ...THROUGHPUT_HEADER,
      throughputRow(r.embedded, undefined),
      throughputRow(r.nats, r.embedded),
      '',
      `Each sidecar has its own redis-server; during each run it also updated another key up to ${r.eventsPerSecond} times a second, one call at a time ` +
        `(one key.updated event each): ${int(r.updates.embedded)} and ${int(r.updates.nats)} UpdateKey calls in all. ` +
        `Sidecars and their redis-servers were new in every rep. Events published by the relays over the whole scenario: in-process ${int(r.published.embedded)}, NATS ${int(r.published.nats)}.`,
    ];
  },
});
