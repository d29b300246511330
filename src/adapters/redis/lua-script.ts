import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-client';

/** A Lua script with its SHA-1, so calls can send the hash instead of the body. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** EVALSHA, loading the script with EVAL when the server does not know it (new or restarted). */
export async function evalScript(redis: RedisClient, s: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, keys.length, [...keys, ...args]);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(s.lua, keys.length, [...keys, ...args]);
  }
}
