import { join } from 'node:path';
import type { KeyServiceClient, ValidateKeyRequest, ValidateKeyStreamRequest, ValidateKeyStreamResponse } from '../src/gen/keyward/v1/key_service.pb';
import { keyServicePb } from './dist-modules';
import { createKey, expectValid, STREAM_PATH, validationRequest, type BenchContext } from './context';
import { grpcFrames, writeFrameFile } from './grpc-frame';
import { SystemCpuMeter, waitForQuiet } from './machine';
import { repOrder } from './interleaved';
import { pairedRatio, ratio, streamRow } from './report-format';
import type { StreamRun } from './results';
import { defineScenario, targetList } from './scenario';
import { startFloor, startKeyward, type KeywardProcess, type ServerProcess } from './server-processes';
import { runStreamLoad } from './stream-load';
import { measure, undisturbed } from './throughput';

/**
 * (d) ValidateKeyStream against a bare grpc-js bidi echo server (the floor), two ways:
 *   node:   `streamClients` grpc-js client processes, one stream each, `streamWindow` requests
 *           in flight per stream (the way an application would call it);
 *   h2load: each HTTP/2 stream carries `h2loadStreamMessages` framed requests in its body and
 *           gets as many answers back, under the same h2load concurrency as the unary runs
 *           (a C load generator, so the server is what saturates).
 * Both report answered messages per second over `reps` interleaved reps, with a new floor and a
 * new keyward in every rep, in mirrored pairs of reps (`repOrder`); the ratio is `pairedRatio`.
 */
export interface StreamResults {
  node: { floor: StreamRun; keyward: StreamRun };
  h2load: { floor: StreamRun; keyward: StreamRun };
}

export async function benchStream(ctx: BenchContext): Promise<StreamResults> {
  const s = ctx.settings;
  const servers: ServerProcess[] = [];
  try {
    // every rep measures a new floor and a new keyward (one process's luck weighs on one rep)
    let encoded: Uint8Array;
    let body: Buffer;
    let answerFrameBytes: number;
    const k = s.h2loadStreamMessages;
    const bodyFile = join(ctx.outDir, 'validate-stream.bin');
    const startRep = async (): Promise<{ floor: ServerProcess; kw: KeywardProcess; req: ValidateKeyRequest }> => {
      await Promise.all(servers.splice(0).map((x) => x.stop()));
      const floor = await startFloor('stream');
      servers.push(floor);
      const kw = await startKeyward('keyward-stream');
      servers.push(kw);
      const req = validationRequest(await createKey(kw, 'bench'), 'bench');
      await expectValid(kw, req);
      const message = (id: number): ValidateKeyStreamRequest => keyServicePb.ValidateKeyStreamRequest.fromPartial({ id, request: req });
      encoded = keyServicePb.ValidateKeyStreamRequest.encode(message(1)).finish();
      // the h2load body: K requests with ids 1..K; one real answer, to know its size
      body = grpcFrames(Array.from({ length: k }, (_, i) => keyServicePb.ValidateKeyStreamRequest.encode(message(i + 1)).finish()));
      writeFrameFile(bodyFile, body);
      const answer = await oneStreamAnswer(kw.keys, message(1));
      answerFrameBytes = 5 + keyServicePb.ValidateKeyStreamResponse.encode(answer).finish().length;
      return { floor, kw, req };
    };

    const nodeRun = async (server: ServerProcess, mode: 'floor' | 'keyward'): Promise<StreamRun> => {
      await waitForQuiet();
      const system = new SystemCpuMeter();
      system.start();
      const r = await runStreamLoad({
        addr: server.addr,
        mode,
        clients: s.streamClients,
        window: s.streamWindow,
        warmupS: s.warmupS,
        durationS: s.durationS,
        request: encoded,
        serverPid: server.pid,
      });
      const busy = system.stop();
      if (r.bad > 0) throw new Error(`stream ${mode}: ${r.bad} of ${r.checked} checked answers are wrong, e.g. ${r.firstBad}`);
      ctx.log(`  ${r.messagesPerSec.toFixed(0)} msg/s (server ${r.serverCores.toFixed(2)} cores, clients ${r.clientCores.toFixed(2)} cores)`);
      return {
        name: `${mode === 'floor' ? 'stream floor (grpc-js echo)' : 'keyward ValidateKeyStream'}, Node clients`,
        messagesPerSec: r.messagesPerSec,
        allRuns: [],
        driver: 'node',
        serverCores: r.serverCores,
        loadGenCores: r.clientCores,
        // the system meter spans warm-up and set-up too: an estimate
        otherCores: Math.max(0, busy - r.serverCores - r.clientCores),
        disturbed: false,
        checked: r.checked,
        bad: r.bad,
      };
    };
    const h2Run = async (server: ServerProcess, mode: 'floor' | 'keyward'): Promise<StreamRun> => {
      const m = await measure(ctx, {
        name: `stream ${mode} (h2load)`,
        serverPid: server.pid,
        // the echo floor returns the requests; keyward returns one answer per request
        expectedResponseBytes: mode === 'floor' ? body.length : k * answerFrameBytes,
        h2load: { url: `http://${server.addr}${STREAM_PATH}`, dataFile: bodyFile, clients: s.h2loadClients, streams: s.h2loadStreams },
      });
      const rate = m.h2.reqPerSec * k;
      ctx.log(`  ${rate.toFixed(0)} msg/s (server ${m.serverCores.toFixed(2)} cores, h2load ${m.h2.h2loadCores.toFixed(2)} cores)`);
      return {
        name: `${mode === 'floor' ? 'stream floor (grpc-js echo)' : 'keyward ValidateKeyStream'}, h2load`,
        messagesPerSec: rate,
        allRuns: [],
        driver: 'h2load',
        serverCores: m.serverCores,
        loadGenCores: m.h2.h2loadCores,
        otherCores: m.otherCores,
        disturbed: false,
      };
    };

    const runs = { nodeFloor: [] as StreamRun[], nodeKw: [] as StreamRun[], h2Floor: [] as StreamRun[], h2Kw: [] as StreamRun[] };
    const other = (r: StreamRun): number => r.otherCores;
    for (let rep = 1; rep <= s.reps; rep++) {
      const { floor, kw, req } = await startRep();
      const order = repOrder(rep, [
        [floor, 'floor'],
        [kw, 'keyward'],
      ] as const);
      for (const [server, mode] of order) {
        ctx.log(`stream rep ${rep}/${s.reps}: ${mode}, ${s.streamClients} Node client process(es) x ${s.streamWindow} in flight`);
        (mode === 'floor' ? runs.nodeFloor : runs.nodeKw).push(await undisturbed(ctx, `stream ${mode} (node)`, () => nodeRun(server, mode), other));
      }
      for (const [server, mode] of order) {
        ctx.log(`stream rep ${rep}/${s.reps}: ${mode}, h2load, ${k} messages per HTTP/2 stream`);
        (mode === 'floor' ? runs.h2Floor : runs.h2Kw).push(await undisturbed(ctx, `stream ${mode} (h2load)`, () => h2Run(server, mode), other));
      }
      await expectValid(kw, req); // still valid after the load
    }
    return {
      node: { floor: best(runs.nodeFloor), keyward: best(runs.nodeKw) },
      h2load: { floor: best(runs.h2Floor), keyward: best(runs.h2Kw) },
    };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
  }
}

function best(runs: StreamRun[]): StreamRun {
  const top = runs.reduce((a, b) => (b.messagesPerSec > a.messagesPerSec ? b : a));
  return { ...top, allRuns: runs.map((r) => r.messagesPerSec) };
}

/** One request over a real ValidateKeyStream call; throws unless the answer is VALID. */
function oneStreamAnswer(client: KeyServiceClient, msg: ValidateKeyStreamRequest): Promise<ValidateKeyStreamResponse> {
  return new Promise((resolve, reject) => {
    const call = client.validateKeyStream();
    call.on('data', (answer) => {
      call.end();
      if (answer.error !== undefined || answer.response?.valid !== true || answer.id !== msg.id) {
        reject(new Error(`ValidateKeyStream answered ${JSON.stringify(answer)}`));
      } else {
        resolve(answer);
      }
    });
    call.on('error', reject);
    call.write(msg);
  });
}

export const streamScenario = defineScenario<StreamResults>({
  name: 'stream',
  summary: 'ValidateKeyStream vs a bare grpc-js bidi echo floor, with Node client processes and with h2load',
  run: benchStream,
  targets(r, s) {
    const t = targetList();
    const node = pairedRatio(r.node.keyward, r.node.floor);
    t.add(
      'stream-node',
      `ValidateKeyStream vs streaming floor (${s.streamClients} Node client process${s.streamClients > 1 ? 'es' : ''})`,
      '≥ 0.8×',
      ratio(node),
      node >= 0.8,
    );
    const h2 = pairedRatio(r.h2load.keyward, r.h2load.floor);
    t.add('stream-h2load', 'ValidateKeyStream vs streaming floor (h2load driver)', '≥ 0.8×', ratio(h2), h2 >= 0.8);
    return t.list;
  },
  render(r, s) {
    return [
      '### ValidateKeyStream',
      '',
      `Node driver: ${s.streamClients} grpc-js client process${s.streamClients > 1 ? 'es' : ''}, one stream each, ${s.streamWindow} requests in flight per stream; ` +
        `h2load driver: ${s.h2loadStreamMessages} requests per HTTP/2 stream body.`,
      '',
      '| measurement | best | vs floor (median of rep pairs) | all runs (in rep order) | server cores | load generator cores | other cores |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      streamRow(r.node.floor, undefined),
      streamRow(r.node.keyward, r.node.floor),
      streamRow(r.h2load.floor, undefined),
      streamRow(r.h2load.keyward, r.h2load.floor),
    ];
  },
});
