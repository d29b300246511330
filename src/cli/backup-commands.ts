import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createRedisClient, RedisKeyStore, waitUntilReady } from '../adapters/store/redis-key-store';
import { BackupFormatError, exportRecords, importRecords } from '../app/backup';
import { CliError } from './admin-client';

async function openStore(url: string): Promise<RedisKeyStore> {
  const redis = createRedisClient(url);
  try {
    await waitUntilReady(redis, 5_000);
  } catch {
    redis.disconnect();
    throw new CliError(`cannot reach Redis at ${new URL(url).host}`);
  }
  return new RedisKeyStore({ redis });
}

export async function runExport(o: { redisUrl: string; output?: string }): Promise<void> {
  const store = await openStore(o.redisUrl);
  const out = o.output ? createWriteStream(o.output, { mode: 0o600 }) : process.stdout;
  let n = 0;
  try {
    for await (const line of exportRecords(store)) {
      if (!out.write(`${line}\n`)) await once(out, 'drain');
      n++;
    }
  } finally {
    await store.close();
    if (o.output) await new Promise<void>((r) => (out as NodeJS.WritableStream).end(() => r()));
  }
  process.stderr.write(`exported ${n} records\n`);
}

export async function runImport(o: { redisUrl: string; input?: string }): Promise<void> {
  const store = await openStore(o.redisUrl);
  try {
    const lines = createInterface({ input: o.input ? createReadStream(o.input) : process.stdin, crlfDelay: Infinity });
    const result = await importRecords(store, lines);
    process.stderr.write(`imported ${result.created} records, ${result.skipped} already present\n`);
  } catch (err) {
    if (err instanceof BackupFormatError) throw new CliError(`import refused, nothing written: ${err.message}`);
    throw err;
  } finally {
    await store.close();
  }
}
