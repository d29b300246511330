import type { ListKeysResponse } from '../src/gen/keyward/v1/key_admin_service.pb';
import { adminPb, pageToken } from './dist-modules';
import type { KeywardProcess } from './server-processes';
import { unary } from './server-processes';
import { median, quantile } from './stats';

/**
 * ListKeys latency through keyward's admin gRPC API (page_size 100): the first page, and a deep
 * page that starts after ~90% of the service's keys. Calls are sequential (one in flight), timed
 * at the client; the figure is the median.
 */
export interface ListLatency {
  keys: number;
  pageSize: number;
  calls: number;
  firstPageMedianMs: number;
  firstPageP99Ms: number;
  deepPageMedianMs: number;
  deepPageP99Ms: number;
  /** The position (0-based) of the key the deep page starts after. */
  deepAfterPosition: number;
}

const PAGE_SIZE = 100;

export async function measureListKeys(
  kw: KeywardProcess,
  service: string,
  keys: number,
  deepAfter: { position: number; id: string },
  calls = 200,
): Promise<ListLatency> {
  const list = (token: string): Promise<ListKeysResponse> =>
    unary(kw.admin.listKeys, kw.admin, adminPb.ListKeysRequest.fromPartial({ service, pageSize: PAGE_SIZE, pageToken: token }), kw.root);

  // A real token from keyward tells the filter encoding; the deep token is the same token with
  // the last-returned id moved to ~90% of the index (page-token.ts: base64url JSON {v, a, f}).
  const first = await list('');
  if (first.keys.length !== PAGE_SIZE || first.nextPageToken === '') {
    throw new Error(`ListKeys first page: expected ${PAGE_SIZE} keys and a next token, got ${first.keys.length}`);
  }
  const body = JSON.parse(Buffer.from(first.nextPageToken, 'base64url').toString('utf8')) as { a: string; f: string };
  if (body.a !== first.keys[PAGE_SIZE - 1].id) throw new Error('page token format changed: bench/list-keys.ts needs an update');
  const deepToken = pageToken.encodePageToken(deepAfter.id, body.f);
  const deep = await list(deepToken);
  if (deep.keys.length !== PAGE_SIZE || deep.keys[0].id <= deepAfter.id) {
    throw new Error(`ListKeys deep page: expected ${PAGE_SIZE} keys after ${deepAfter.id}, got ${deep.keys.length} starting at ${deep.keys[0]?.id}`);
  }

  const time = async (token: string, n: number): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const page = await list(token);
      ms.push(performance.now() - t0);
      if (page.keys.length !== PAGE_SIZE) throw new Error(`ListKeys returned ${page.keys.length} keys`);
    }
    return ms;
  };
  // warm both paths, then alternate blocks so drift affects both alike
  await time('', 20);
  await time(deepToken, 20);
  const firstMs: number[] = [];
  const deepMs: number[] = [];
  const block = Math.ceil(calls / 4);
  for (let b = 0; b < 4; b++) {
    firstMs.push(...(await time('', block)));
    deepMs.push(...(await time(deepToken, block)));
  }
  return {
    keys,
    pageSize: PAGE_SIZE,
    calls: firstMs.length,
    firstPageMedianMs: median(firstMs),
    firstPageP99Ms: quantile(firstMs, 0.99),
    deepPageMedianMs: median(deepMs),
    deepPageP99Ms: quantile(deepMs, 0.99),
    deepAfterPosition: deepAfter.position,
  };
}
