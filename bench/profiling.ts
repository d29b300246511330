import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createKey, expectValid, STREAM_PATH, VALIDATE_PATH, validationRequest, type BenchContext } from './context';
import { keyServicePb } from './dist-modules';
import { grpcFrame, grpcFrames, writeFrameFile } from './grpc-frame';
import { runH2load } from './h2load';
import { sleep } from './processes';
import { summariseProfile, type ProfileSummary } from './profile-summary';
import { startKeyward } from './server-processes';

/**
 * Re-runs a scenario whose target was missed with keyward under `node --cpu-prof` (a separate
 * run: the profiler costs throughput, so profiled numbers are never reported as results) and
 * summarises where keyward's CPU time goes. Profiles are kept in bench/out/profiles/.
 */
export type ProfileScenario = 'cached' | 'cache-off' | 'stream';

export async function profileScenario(ctx: BenchContext, scenario: ProfileScenario): Promise<ProfileSummary> {
  const dir = join(ctx.outDir, 'profiles');
  mkdirSync(dir, { recursive: true });
  const name = `keyward-${scenario}`;
  const env: Record<string, string> =
    scenario === 'cache-off' ? { KEYWARD_REDIS_URL: ctx.redisUrl, KEYWARD_CACHE_MAX_ENTRIES: '0' } : {};
  const kw = await startKeyward(name, { env, cpuProfDir: dir });
  const file = join(dir, `${name}.cpuprofile`);
  try {
    const req = validationRequest(await createKey(kw, 'bench'), 'bench');
    await expectValid(kw, req);
    const dataFile = join(ctx.outDir, `profile-${scenario}.bin`);
    let path = VALIDATE_PATH;
    if (scenario === 'stream') {
      path = STREAM_PATH;
      const k = ctx.settings.h2loadStreamMessages;
      writeFrameFile(
        dataFile,
        grpcFrames(
          Array.from({ length: k }, (_, i) =>
            keyServicePb.ValidateKeyStreamRequest.encode(keyServicePb.ValidateKeyStreamRequest.fromPartial({ id: i + 1, request: req })).finish(),
          ),
        ),
      );
    } else {
      writeFrameFile(dataFile, grpcFrame(keyServicePb.ValidateKeyRequest.encode(req).finish()));
    }
    ctx.log(`profiling keyward (${scenario}) with --cpu-prof`);
    await runH2load(ctx.h2load, {
      url: `http://${kw.addr}${path}`,
      dataFile,
      clients: ctx.settings.h2loadClients,
      streams: ctx.settings.h2loadStreams,
      durationS: 8,
      warmupS: 1,
    });
  } finally {
    await kw.stop(); // SIGTERM: keyward exits 0 and the profiler writes the file
  }
  for (let i = 0; i < 50 && !existsSync(file); i++) await sleep(100);
  if (!existsSync(file)) throw new Error(`no CPU profile written at ${file}`);
  return summariseProfile(file);
}
