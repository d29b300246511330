import type { MeasuredRun } from './throughput';
import { createConnection } from 'node:net';

/**
 * How many times Redis has run the given commands since it started (INFO commandstats, summed),
 * over a raw connection so the count includes nothing of the bench's own: it proves that a run
 * reached Redis as often as it claims (a script per rate-limited request, a read per cache-off
 * validation).
 */
export function redisCommandCalls(redisUrl: string, commands: readonly string[]): Promise<number> {
  const { hostname, port } = new URL(redisUrl);
  const wanted = new Set(commands.map((c) => c.toLowerCase()));
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    let reply = '';
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error('INFO commandstats timed out'));
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.write('INFO commandstats\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      const m = /^\$(\d+)\r\n/.exec(reply);
      if (!m || Buffer.byteLength(reply) < m[0].length + Number(m[1])) return;
      socket.destroy();
      let calls = 0;
      for (const c of reply.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) if (wanted.has(c[1])) calls += Number(c[2]);
      resolve(calls);
    });
  });
}

/**
 * A contender's `before` / `after` hooks proving that Redis ran at least one of `commands` per
 * measured request (warm-up requests run them too, so fewer means the path under test was not
 * taken: the run fails, naming `what`), and the count per measured request of each run, keyed by
 * the run's rate (`perRequest(bestRun.reqPerSec)`).
 */
export function commandsPerRequest(
  redisUrl: string,
  commands: readonly string[],
  what: string,
): { before(): Promise<void>; after(run: MeasuredRun): Promise<void>; perRequest(reqPerSec: number): number } {
  let before = 0;
  const perRun = new Map<number, number>();
  return {
    before: async () => {
      before = await redisCommandCalls(redisUrl, commands);
    },
    after: async (run) => {
      const calls = (await redisCommandCalls(redisUrl, commands)) - before;
      perRun.set(run.h2.reqPerSec, calls / run.h2.succeeded);
      if (calls < run.h2.succeeded) throw new Error(`Redis ran ${calls} ${commands.join('/')} for ${run.h2.succeeded} ${what}`);
    },
    perRequest: (reqPerSec) => perRun.get(reqPerSec) ?? NaN,
  };
}
