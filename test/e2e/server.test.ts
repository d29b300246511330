import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KeyServiceClient, ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { BIN, call, ROOT, startKeyward } from '../support/keyward-process';

const run = promisify(execFile);
const BUF = join(ROOT, 'node_modules/.bin/buf');

describe('listeners', () => {
  test('serves on a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyward-sock-'));
    const kw = await startKeyward({ KEYWARD_GRPC_ADDR: `unix://${join(dir, 'keyward.sock')}` });
    try {
      expect(kw.grpcAddr).toBe(`unix://${join(dir, 'keyward.sock')}`);
      const res = await call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial({ key: 'nope' }), new Metadata());
      expect(res.code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    } finally {
      expect(await kw.stop()).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the health listener serves health only; reflection and health are on the main one', async () => {
    const kw = await startKeyward();
    try {
      const curl = (url: string, ...args: string[]) =>
        run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args, url]);
      const health = await curl(`http://${kw.healthAddr}/grpc.health.v1.Health/Check`, '--schema', join(ROOT, 'node_modules/grpc-health-check/proto'));
      expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING' });
      const onMain = await curl(`http://${kw.grpcAddr}/grpc.health.v1.Health/Check`);
      expect(JSON.parse(onMain.stdout)).toEqual({ status: 'SERVING' });

      const healthOnly = new KeyServiceClient(kw.healthAddr, credentials.createInsecure());
      const err = await call(healthOnly.validateKey.bind(healthOnly), ValidateKeyRequest.fromPartial({ key: 'x' }), new Metadata()).catch((e: ServiceError) => e);
      expect((err as ServiceError).code).toBe(status.UNIMPLEMENTED);
      healthOnly.close();
      await expect(curl(`http://${kw.healthAddr}`, '--list-services')).rejects.toThrow();
    } finally {
      await kw.stop();
    }
  });
});

describe('reflection: buf curl with no proto files, as the README shows', () => {
  test('lists services and calls ValidateKey and the admin API', async () => {
    const kw = await startKeyward();
    try {
      const base = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge'];
      const listed = await run(BUF, [...base, '--list-services', `http://${kw.grpcAddr}`]);
      expect(listed.stdout.split('\n')).toEqual(
        expect.arrayContaining(['grpc.health.v1.Health', 'keyward.v1.KeyAdminService', 'keyward.v1.KeyService']),
      );
      for (const reflect of ['grpc-v1', 'grpc-v1alpha']) {
        const created = await run(BUF, [...base, '--reflect-protocol', reflect, '-H', 'authorization: Bearer e2e-bootstrap-token-0123456789abcdefghijklmnop',
          '-d', '{"service":"orders","scopes":["orders:*"]}', `http://${kw.grpcAddr}/keyward.v1.KeyAdminService/CreateKey`]);
        const secret = JSON.parse(created.stdout).secret as string;
        const validated = await run(BUF, [...base, '--reflect-protocol', reflect, '-d', JSON.stringify({ key: secret, required_scopes: ['orders:read'] }),
          `http://${kw.grpcAddr}/keyward.v1.KeyService/ValidateKey`]);
        expect(JSON.parse(validated.stdout)).toMatchObject({ valid: true, code: 'VALIDATION_CODE_VALID' });
      }
    } finally {
      await kw.stop();
    }
  });
});

describe('shutdown', () => {
  test('SIGTERM drains in-flight calls and exits 0', async () => {
    const kw = await startKeyward();
    const validate = () =>
      call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial({ key: 'x' }), new Metadata()).then(
        (r) => r.code,
        (e: ServiceError) => e.code,
      );
    await validate(); // connected
    let answered = 0;
    let signalled!: () => void;
    const afterSignal = new Promise<void>((r) => (signalled = r));
    const pending = Array.from({ length: 2000 }, () =>
      validate().then((code) => {
        if (++answered === 100) {
          kw.child.kill('SIGTERM');
          signalled();
        }
        return code;
      }),
    );
    await afterSignal;
    const codes = await Promise.all(pending);
    // Calls that reached the server were answered; none was cut off half-way (CANCELLED/INTERNAL);
    // calls sent after the listener closed are UNAVAILABLE, which clients retry elsewhere.
    expect(codes.filter((c) => c === ValidationCode.VALIDATION_CODE_MALFORMED).length).toBeGreaterThan(100);
    expect(codes.filter((c) => c !== ValidationCode.VALIDATION_CODE_MALFORMED && c !== status.UNAVAILABLE)).toEqual([]);
    expect(await kw.stop()).toBe(0);
    expect(kw.logs.some((l) => l.msg === 'keyward stopped')).toBe(true);
  });

  test('a SIGTERM the moment keyward says it is listening (before start-up has returned) still drains and exits 0', async () => {
    // The "keyward listening" line is written inside start-up; the signal handlers must already be in place.
    for (let i = 0; i < 3; i++) {
      const kw = await startKeyward();
      expect(await kw.stop()).toBe(0);
      expect(kw.logs.some((l) => l.msg === 'keyward stopped')).toBe(true);
    }
  });

  test('a call that never ends is cut at the shutdown timeout, and keyward still exits 0 in time', async () => {
    const kw = await startKeyward({ KEYWARD_SHUTDOWN_TIMEOUT: '500ms' });
    // Health.Watch is a stream that stays open until the server ends it.
    const watch = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--schema', join(ROOT, 'node_modules/grpc-health-check/proto'),
      `http://${kw.healthAddr}/grpc.health.v1.Health/List`]).catch(() => undefined);
    expect(watch).toBeDefined();
    const stream = execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--schema', join(ROOT, 'node_modules/grpc-health-check/proto'),
      `http://${kw.healthAddr}/grpc.health.v1.Health/Watch`, '-d', '{}']);
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    expect(await kw.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(kw.logs.some((l) => l.msg === 'shutdown timeout reached; cancelling in-flight calls')).toBe(true);
    stream.kill();
  });
});

describe('configuration errors stop start-up with the setting named', () => {
  test.each([
    ['KEYWARD_GRPC_ADDR', 'not-an-address', /KEYWARD_GRPC_ADDR \(grpcAddr\): must be host:port/],
    ['KEYWARD_ADMIN_TOKEN', 'short', /KEYWARD_ADMIN_TOKEN \(adminToken\): must be at least 32 characters/],
    ['KEYWARD_LOG_LEVEL', 'loud', /KEYWARD_LOG_LEVEL \(logLevel\)/],
    ['KEYWARD_SHUTDOWN_TIMEOUT', 'soon', /KEYWARD_SHUTDOWN_TIMEOUT \(shutdownTimeout\): must be a duration/],
    ['KEYWARD_CONFIG', '/nonexistent/keyward.yaml', /KEYWARD_CONFIG: cannot read/],
  ])('%s=%s', async (name, value, message) => {
    const err = await run(process.execPath, [BIN, 'serve'], { env: { PATH: process.env.PATH, [name]: value } }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(message);
  });

  test('a port in use is a clear start-up failure', async () => {
    const kw = await startKeyward();
    try {
      const err = await run(process.execPath, [BIN, 'serve'], {
        env: { PATH: process.env.PATH, KEYWARD_GRPC_ADDR: kw.grpcAddr, KEYWARD_HEALTH_ADDR: '127.0.0.1:0', KEYWARD_ADMIN_TOKEN: 'x'.repeat(32) },
      }).catch((e) => e);
      expect(err.code).toBe(1);
      expect(err.stdout).toContain(`cannot listen on ${kw.grpcAddr}`);
    } finally {
      await kw.stop();
    }
  });
});
