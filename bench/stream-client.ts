import { Client, credentials, type ClientDuplexStream } from '@grpc/grpc-js';

/**
 * A load-generating client process for ValidateKeyStream: one grpc-js channel, one bidi
 * stream, `window` requests kept in flight (a new request for every answer). The request is one
 * pre-encoded ValidateKeyStreamRequest sent over and over, and answers are not decoded except
 * for samples, so the client spends as little CPU per message as grpc-js allows.
 *
 *   node stream-client.js <addr> <keyward|floor> <window> <warmupMs> <durationMs> <requestBase64>
 *
 * IPC with the parent: sends {type: 'ready'} once one request was answered correctly, waits for
 * {type: 'go'}, then sends {type: 'result', ...} after warm-up + duration and exits.
 */

export interface StreamClientResult {
  type: 'result';
  /** Answers received during the measured window. */
  messages: number;
  seconds: number;
  /** CPU seconds (user + system) this client used during the measured window. */
  cpuSeconds: number;
  /** Answers checked (decoded) and how many of them were wrong. */
  checked: number;
  bad: number;
  firstBad?: string;
}

const PATH = '/keyward.v1.KeyService/ValidateKeyStream';
const identity = (b: Buffer): Buffer => b;

async function main(): Promise<void> {
  const [addr, mode, windowArg, warmupArg, durationArg, requestB64] = process.argv.slice(2);
  const window = Number(windowArg);
  const warmupMs = Number(warmupArg);
  const durationMs = Number(durationArg);
  const request = Buffer.from(requestB64, 'base64');
  // keyward answers are checked with keyward's own decoder, loaded only in keyward mode
  const decode =
    mode === 'keyward'
      ? (await import('./dist-modules')).keyServicePb.ValidateKeyStreamResponse.decode
      : undefined;

  let checked = 0;
  let bad = 0;
  let firstBad: string | undefined;
  const check = (answer: Buffer): void => {
    checked++;
    let problem: string | undefined;
    if (decode) {
      const msg = decode(answer);
      if (msg.error !== undefined || msg.response?.valid !== true) problem = JSON.stringify(msg);
    } else if (!answer.equals(request)) {
      problem = `echo differs: ${answer.toString('hex')}`;
    }
    if (problem !== undefined) {
      bad++;
      firstBad ??= problem;
    }
  };

  const client = new Client(addr, credentials.createInsecure());
  const call: ClientDuplexStream<Buffer, Buffer> = client.makeBidiStreamRequest(PATH, identity, identity);
  let received = 0;
  let running = false;
  let closing = false;
  call.on('data', (answer: Buffer) => {
    received++;
    if (received <= 100 || received % 997 === 0) check(answer);
    if (received === 1 && !running) {
      if (bad > 0) {
        process.stderr.write(`stream-client: first answer is wrong: ${firstBad}\n`);
        process.exit(1);
      }
      process.send!({ type: 'ready' });
      return;
    }
    if (running) call.write(request);
  });
  call.on('error', (err) => {
    if (closing) return;
    process.stderr.write(`stream-client: stream failed: ${err.message}\n`);
    process.exit(1);
  });
  call.write(request);

  process.on('message', (msg: { type: string }) => {
    if (msg.type !== 'go') return;
    running = true;
    for (let i = 0; i < window; i++) call.write(request);
    let r0 = 0;
    let t0 = 0;
    let c0: NodeJS.CpuUsage;
    setTimeout(() => {
      r0 = received;
      t0 = performance.now();
      c0 = process.cpuUsage();
      setTimeout(() => {
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(c0);
        const result: StreamClientResult = {
          type: 'result',
          messages: received - r0,
          seconds,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          checked,
          bad,
          ...(firstBad !== undefined && { firstBad }),
        };
        running = false;
        closing = true;
        process.send!(result, () => {
          call.cancel();
          client.close();
          process.exit(0);
        });
      }, durationMs);
    }, warmupMs);
  });
  process.on('disconnect', () => process.exit(0));
}

void main().catch((err: unknown) => {
  process.stderr.write(`stream-client: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
