import { join } from 'node:path';
import type { Policy } from '../src/gen/keyward/v1/policy.pb';
import type { ValidateKeyRequest } from '../src/gen/keyward/v1/key_service.pb';
import { createKey, expectValid, validationRequest, type BenchContext } from './context';
import { adminPb, keyServicePb } from './dist-modules';
import { grpcFrame, writeFrameFile } from './grpc-frame';
import { interleavedFresh } from './interleaved';
import { commandsPerRequest } from './redis-commandstats';
import { THROUGHPUT_HEADER, int, pairedRatio, ratio, throughputRow } from './report-format';
import type { ThroughputRun } from './results';
import { defineScenario, targetList } from './scenario';
import { startFloor, startKeyward, unary, type KeywardProcess } from './server-processes';
import { FLOOR_ANSWER_BYTES, url } from './unary-bench';

/**
 * Issue 5: ValidateKey with policies, against the unary floor, interleaved, with a new floor and
 * keyward in every rep. One keyward on the bench's Redis (cache on), with two services (of its
 * rep) whose default policies are:
 *   rate limit:   one Redis-backed rate limit (1e9 per hour, burst 1000: every call is VALID),
 *                 so every call runs the limiter's Lua script on Redis (one EVALSHA);
 *   local rules:  allowed scopes, an allowed CIDR holding the request's client_ip and a time
 *                 window covering the whole week (Europe/Berlin), all decided in-process.
 * Every request carries client_ip 203.0.113.7 and required scope orders:read, so the rules are
 * evaluated. Checked before the load: both answers are VALID, the rate-limited one carries its
 * limit state, and the local-rules key is FORBIDDEN from another IP (the CIDR rule really runs);
 * after it: Redis ran at least one limiter script per measured request (INFO commandstats).
 */
export interface PolicyResults {
  floor: ThroughputRun;
  rateLimit: ThroughputRun;
  localRules: ThroughputRun;
  /** Scripts (EVALSHA + EVAL) Redis ran during the best rate-limit run, per measured request. */
  scriptsPerRequest: number;
}

const CLIENT_IP = '203.0.113.7';
const ALL_WEEK = { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '24:00' };

export async function benchPolicies(ctx: BenchContext): Promise<PolicyResults> {
  const scripts = commandsPerRequest(ctx.redisUrl, ['evalsha', 'eval'], 'rate-limited requests: the limiter was not called');
  // every rep measures new processes (interleavedFresh), with services of its own in the shared Redis
  const runs = await interleavedFresh(ctx, 'policies', async (repNo, track) => {
    const floor = track(await startFloor('unary'));
    const kw = track(await startKeyward('keyward-policies', { env: { KEYWARD_REDIS_URL: ctx.redisUrl } }));
    const rlService = `bench-rl-${repNo}`;
    const localService = `bench-local-${repNo}`;
    await createDefaultPolicy(kw, {
      service: rlService,
      name: 'rate limited',
      rateLimits: [{ name: 'bench', limit: 1_000_000_000, period: { seconds: 3600, nanos: 0 }, burst: 1000 }],
    });
    await createDefaultPolicy(kw, {
      service: localService,
      name: 'local rules',
      allowedScopes: ['orders:*', 'billing:*'],
      allowedCidrs: ['203.0.113.0/24', '2001:db8::/32'],
      timeZone: 'Europe/Berlin',
      timeWindows: [ALL_WEEK],
    });
    const rlReq = validationRequest(await createKey(kw, rlService), rlService);
    const localReq = validationRequest(await createKey(kw, localService), localService);
    if (rlReq.clientIp !== CLIENT_IP) throw new Error(`bench/context.ts validationRequest changed its client_ip: ${rlReq.clientIp}`);

    const rl = await expectValid(kw, rlReq);
    const limits = rl.response.limits?.rateLimits ?? [];
    if (limits.length !== 1 || limits[0].name !== 'bench') throw new Error(`the rate-limited answer carries no limit state: ${JSON.stringify(rl.response.limits)}`);
    const local = await expectValid(kw, localReq);
    await expectCode(kw, { ...localReq, clientIp: '198.51.100.7' }, keyServicePb.ValidationCode.VALIDATION_CODE_FORBIDDEN);

    const rlFile = frameFile(ctx, 'validate-rate-limit.bin', rlReq);
    const localFile = frameFile(ctx, 'validate-local-rules.bin', localReq);
    return {
      contenders: [
        { key: 'floor', name: 'unary floor (bare grpc-js)', serverPid: floor.pid, url: url(floor), dataFile: localFile, expectedResponseBytes: FLOOR_ANSWER_BYTES },
        {
          key: 'rateLimit',
          name: 'keyward ValidateKey, policy with one Redis rate limit',
          serverPid: kw.pid,
          helper: { pid: ctx.redisPid, name: 'redis' },
          url: url(kw),
          dataFile: rlFile,
          expectedResponseBytes: rl.frameBytes,
          before: scripts.before,
          after: scripts.after,
        },
        {
          key: 'localRules',
          name: 'keyward ValidateKey, policy with local rules only',
          serverPid: kw.pid,
          url: url(kw),
          dataFile: localFile,
          expectedResponseBytes: local.frameBytes,
        },
      ],
      finish: async () => {
        await expectValid(kw, rlReq);
        await expectValid(kw, localReq);
      },
    };
  });
  return { floor: runs.floor, rateLimit: runs.rateLimit, localRules: runs.localRules, scriptsPerRequest: scripts.perRequest(runs.rateLimit.reqPerSec) };
}

async function createDefaultPolicy(kw: KeywardProcess, policy: Partial<Policy>): Promise<void> {
  await unary(kw.admin.createPolicy, kw.admin, adminPb.CreatePolicyRequest.fromPartial({ policy, serviceDefault: true }), kw.root);
}

async function expectCode(kw: KeywardProcess, req: ValidateKeyRequest, code: number): Promise<void> {
  const res = await unary(kw.keys.validateKey, kw.keys, req);
  if (res.code !== code) throw new Error(`${kw.name}: expected code ${code}, got ${JSON.stringify(res)}`);
}

function frameFile(ctx: BenchContext, name: string, req: ValidateKeyRequest): string {
  const file = join(ctx.outDir, name);
  writeFrameFile(file, grpcFrame(keyServicePb.ValidateKeyRequest.encode(req).finish()));
  return file;
}

export const policyScenario = defineScenario<PolicyResults>({
  name: 'policies',
  summary: 'ValidateKey on a key with one Redis rate limit, and on one with local rules only (scopes, CIDR, time window), vs the unary floor',
  run: benchPolicies,
  targets(r) {
    const t = targetList();
    const rl = pairedRatio(r.rateLimit, r.floor);
    t.add('policy-rate-limit', 'ValidateKey, policy with one Redis-backed rate limit, vs unary floor', '≥ 0.5×', ratio(rl), rl >= 0.5);
    const local = pairedRatio(r.localRules, r.floor);
    t.add('policy-local-rules', 'ValidateKey, policy with local rules only (scopes, CIDR, time window), vs unary floor', '≥ 0.8×', ratio(local), local >= 0.8);
    return t.list;
  },
  render(r) {
    return [
      '### Policies (ValidateKey, Redis store with its cache)',
      '',
      ...THROUGHPUT_HEADER,
      throughputRow(r.floor, undefined),
      throughputRow(r.rateLimit, r.floor),
      throughputRow(r.localRules, r.floor),
      '',
      `Every answer was VALID (checked before and after, and by answer size during the load); the rate-limited answers carry their limit state, ` +
        `and Redis ran ${r.scriptsPerRequest.toFixed(2)} limiter scripts per measured request in the best run (warm-up included: at least 1). ` +
        `Requests carry client_ip ${CLIENT_IP} and required scope orders:read; the local-rules key answers FORBIDDEN from another IP. ` +
        `(${int(r.rateLimit.succeeded)} and ${int(r.localRules.succeeded)} requests in the best runs.)`,
    ];
  },
});
