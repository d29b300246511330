import { join } from 'node:path';
import type { ValidateKeyRequest } from '../src/gen/keyward/v1/key_service.pb';
import { createKey, expectValid, validationRequest, type BenchContext } from './context';
import { keyServicePb } from './dist-modules';
import { grpcFrame, writeFrameFile } from './grpc-frame';
import { interleavedFresh, type Contender } from './interleaved';
import { scrapeCounter } from './metrics-scrape';
import { sleep } from './processes';
import { THROUGHPUT_HEADER, f2, int, pairedRatio, ratio, throughputRow } from './report-format';
import type { ThroughputRun } from './results';
import { defineScenario, targetList } from './scenario';
import { startKeyward, startOtlpSink, type KeywardProcess, type OtlpSink, type ServerProcess } from './server-processes';
import { url } from './unary-bench';

/**
 * Issue 7: the cost of tracing on cached ValidateKey. Three sidecars with the embedded store,
 * each answering its own key from the cache, under the unary h2load load, interleaved, started
 * anew for every rep (`interleavedFresh`: one process's luck weighs on one rep only):
 *   off:        no OTEL_* endpoint, so no SDK is loaded (the default);
 *   ratio 1.0:  OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP/HTTP sink process (otlp-sink.ts),
 *               OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=1.0;
 *   ratio 0:    the same with OTEL_TRACES_SAMPLER_ARG=0 (its own sink, which must get no span).
 * Every other OTEL_* setting is the SDK default (batch span processor: 5 s delay, queue 2048,
 * batches of 512). h2load sends no traceparent, so every call is a root and the ratio decides.
 * The sinks count what they received over all reps, and each traced sidecar's
 * keyward_validations_total, read before it is stopped, says how many validations it answered:
 * the report shows spans exported per validation.
 */
export interface TracingResults {
  off: ThroughputRun;
  ratio1: ThroughputRun;
  ratio0: ThroughputRun;
  exported: { ratio1: SpanCount; ratio0: SpanCount };
}

export interface SpanCount {
  /** Validations the sidecar answered over its whole life (checks, warm-up and measured runs). */
  validations: number;
  spans: number;
  exportRequests: number;
  /** The most frequent span names with their counts. */
  names: Record<string, number>;
}

const SAMPLER = 'parentbased_traceidratio';

export async function benchTracing(ctx: BenchContext): Promise<TracingResults> {
  const servers: ServerProcess[] = [];
  try {
    const sink1 = await startOtlpSink();
    servers.push(sink1);
    const sink0 = await startOtlpSink();
    servers.push(sink0);
    const tracingEnv = (sink: OtlpSink, arg: string): Record<string, string> => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
      OTEL_TRACES_SAMPLER: SAMPLER,
      OTEL_TRACES_SAMPLER_ARG: arg,
      OTEL_SERVICE_NAME: 'keyward-bench',
    });
    const prepare = async (kw: KeywardProcess): Promise<{ req: ValidateKeyRequest; file: string; bytes: number }> => {
      const req = validationRequest(await createKey(kw, 'bench'), 'bench');
      const file = join(ctx.outDir, `validate-${kw.name}.bin`);
      writeFrameFile(file, grpcFrame(keyServicePb.ValidateKeyRequest.encode(req).finish()));
      const answer = await expectValid(kw, req);
      return { req, file, bytes: answer.frameBytes };
    };
    const traced = (key: string, arg: string, kw: KeywardProcess, sink: OtlpSink, p: { file: string; bytes: number }): Contender => ({
      key,
      name: `cached ValidateKey, tracing on, ${SAMPLER} ${arg}`,
      serverPid: kw.pid,
      helper: { pid: sink.pid, name: 'OTLP sink' },
      url: url(kw),
      dataFile: p.file,
      expectedResponseBytes: p.bytes,
    });
    // validations answered by the traced sidecars of every rep (read before each is stopped)
    const validations = { ratio1: 0, ratio0: 0 };

    // the rep's sidecars are stopped with SIGTERM, and a traced sidecar then sends its open span batch
    const runs = await interleavedFresh(ctx, 'tracing', async (_rep, track) => {
      const off = track(await startKeyward('keyward-tracing-off'));
      const on1 = track(await startKeyward('keyward-tracing-1.0', { env: tracingEnv(sink1, '1.0') }));
      const on0 = track(await startKeyward('keyward-tracing-0', { env: tracingEnv(sink0, '0') }));
      const [pOff, p1, p0] = [await prepare(off), await prepare(on1), await prepare(on0)];
      return {
        contenders: [
          { key: 'off', name: 'cached ValidateKey, tracing off', serverPid: off.pid, url: url(off), dataFile: pOff.file, expectedResponseBytes: pOff.bytes },
          traced('ratio1', '1.0', on1, sink1, p1),
          traced('ratio0', '0', on0, sink0, p0),
        ],
        finish: async () => {
          // still valid after the load
          await expectValid(off, pOff.req);
          await expectValid(on1, p1.req);
          await expectValid(on0, p0.req);
          validations.ratio1 += await scrapeCounter(on1, 'keyward_validations_total');
          validations.ratio0 += await scrapeCounter(on0, 'keyward_validations_total');
        },
      };
    });

    // the sidecars sent their last batches when stopped; give the sink a moment to count them
    await sleep(1_000);
    const count = async (sink: OtlpSink, validationsAnswered: number): Promise<SpanCount> => {
      const st = await sink.stats();
      if (st.rejected > 0) throw new Error(`${sink.name} rejected ${st.rejected} export requests`);
      const names = Object.fromEntries(Object.entries(st.names).sort((a, b) => b[1] - a[1]).slice(0, 6));
      return { validations: validationsAnswered, spans: st.spans, exportRequests: st.requests, names };
    };
    const exported = { ratio1: await count(sink1, validations.ratio1), ratio0: await count(sink0, validations.ratio0) };
    ctx.log(`  ratio 1.0: ${exported.ratio1.spans} spans for ${exported.ratio1.validations} validations; ratio 0: ${exported.ratio0.spans} spans`);
    if (exported.ratio1.spans === 0) throw new Error('tracing at ratio 1.0 exported no span: the tracing scenario measured nothing');
    return { off: runs.off, ratio1: runs.ratio1, ratio0: runs.ratio0, exported };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
  }
}

export const tracingScenario = defineScenario<TracingResults>({
  name: 'tracing',
  summary: 'cached ValidateKey with OTLP tracing at sampling ratio 1.0 and 0 vs tracing off',
  run: benchTracing,
  targets(r) {
    const t = targetList();
    const one = pairedRatio(r.ratio1, r.off);
    t.add('tracing-1.0', 'cached ValidateKey, tracing on (ratio 1.0) vs tracing off', '≥ 0.85×', ratio(one), one >= 0.85);
    const zero = pairedRatio(r.ratio0, r.off);
    t.add('tracing-0', 'cached ValidateKey, tracing configured with ratio 0 vs tracing off', '≥ 0.97×', ratio(zero), zero >= 0.97);
    return t.list;
  },
  render(r) {
    const e1 = r.exported.ratio1;
    const e0 = r.exported.ratio0;
    // CPU per validation over all of a sidecar's threads, as ratios of the same reps (paired like throughput)
    const cpu = (run: ThroughputRun) => ({ allRuns: run.allCpuUsPerRequest });
    const cpuMedian = (run: ThroughputRun) => [...run.allCpuUsPerRequest].sort((a, b) => a - b)[Math.floor(run.allCpuUsPerRequest.length / 2)];
    return [
      '### Tracing (cached ValidateKey, OTLP/HTTP to a local sink)',
      '',
      ...THROUGHPUT_HEADER,
      throughputRow(r.off, undefined),
      throughputRow(r.ratio1, r.off),
      throughputRow(r.ratio0, r.off),
      '',
      `Exported: at ratio 1.0 the sink received ${int(e1.spans)} spans in ${int(e1.exportRequests)} export requests for the ${int(e1.validations)} validations ` +
        `the ratio-1.0 sidecars answered (one new sidecar per rep, each stopped with SIGTERM, which sends its open batch; ${f2(e1.spans / Math.max(1, e1.validations))} spans per validation; by name: ${Object.entries(e1.names)
          .map(([n, c]) => `\`${n}\` ${int(c)}`)
          .join(', ')}); at ratio 0, ${int(e0.spans)} spans for ${int(e0.validations)} validations. ` +
        'Fewer spans than validations × spans per call means the batch span processor dropped some (its queue holds 2048).',
      '',
      `CPU per validation, all of the sidecar's threads (the export worker and V8's helper threads for garbage collection and compilation run on the core h2load leaves idle, so they cost throughput here only where they hold up the main thread; a sidecar whose CPU is limited pays for all of it): ` +
        `tracing off ${f2(cpuMedian(r.off))} µs, ratio 1.0 ${f2(cpuMedian(r.ratio1))} µs (${ratio(pairedRatio(cpu(r.ratio1), cpu(r.off)))} of tracing off), ratio 0 ${f2(cpuMedian(r.ratio0))} µs (${ratio(pairedRatio(cpu(r.ratio0), cpu(r.off)))}); medians of the runs, ratios paired by rep as above.`,
    ];
  },
});
