import type { KeyRecord } from '../src/domain/key-record';
import type { RedisKeyStore } from '../src/adapters/store/redis-key-store';
import { keyFormat, keyHash, keyId, redisStore } from './dist-modules';

/**
 * Loads keys straight into Redis through keyward's own RedisKeyStore.create (the same Lua
 * script the admin API runs), many at a time over one auto-pipelined connection, so the layout
 * (record, id pointer, six indexes) is exactly what keyward writes. Records are built the way
 * KeyAdmin.create builds them.
 */
export class KeyLoader {
  private readonly store: RedisKeyStore;
  private readonly ready: Promise<void>;
  private readonly ids = new keyId.KeyIdGenerator();
  private loaded = 0;

  constructor(
    redisUrl: string,
    private readonly service: string,
    private readonly concurrency = 512,
  ) {
    const redis = redisStore.createRedisClient(redisUrl, { enableAutoPipelining: true, commandTimeout: 30_000 });
    this.store = new redisStore.RedisKeyStore({ redis });
    // the client is made without an offline queue: commands before `ready` fail
    this.ready = redisStore.waitUntilReady(redis, 10_000);
  }

  /** Keys of `service` loaded so far. */
  get count(): number {
    return this.loaded;
  }

  /**
   * Adds `n` keys. `keepSecrets` returns their secrets (to validate them later); `idAt` lists
   * positions (0-based, over every key loaded so far) whose ids to return, e.g. for page tokens.
   */
  async load(
    n: number,
    opts: { keepSecrets?: boolean; idAt?: readonly number[] } = {},
  ): Promise<{ seconds: number; perSec: number; secrets: string[]; ids: Map<number, string> }> {
    await this.ready;
    const secrets: string[] = [];
    const ids = new Map<number, string>();
    const wanted = new Set(opts.idAt ?? []);
    const base = this.loaded;
    let next = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (next < n) {
        const position = base + next++;
        const { record, secret } = this.makeRecord(position);
        if (opts.keepSecrets) secrets.push(secret);
        if (wanted.has(position)) ids.set(position, record.id);
        await this.store.create(record);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, n) }, worker));
    this.loaded += n;
    const seconds = (performance.now() - started) / 1000;
    return { seconds, perSec: n / seconds, secrets, ids };
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private makeRecord(position: number): { record: KeyRecord; secret: string } {
    const now = Date.now();
    const secret = keyFormat.generateKey('sk');
    const record: KeyRecord = {
      // ids are generated in position order, so position k is the k-th id of the service index
      id: this.ids.next(now),
      hash: keyHash.hashKey(secret),
      service: this.service,
      owner: `owner-${position % 1000}`,
      name: `bench key ${position}`,
      prefix: 'sk',
      hint: keyFormat.displayHint(keyFormat.parseKey(secret)!),
      scopes: ['orders:*', 'billing:read'],
      metadata: { plan: 'pro', region: 'eu-west-1' },
      state: 'active',
      createdAt: now,
      updatedAt: now,
      usageCount: 0,
      version: 1,
    };
    return { record, secret };
  }
}
