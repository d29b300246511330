import { exists, getKeyIndexes } from '@ioredis/commands';

/** Key names shown per command at most, and characters per key name. */
const MAX_KEYS = 8;
const MAX_KEY_LENGTH = 160;

type CommandArg = string | Buffer | number | unknown[];

/**
 * `db.query.text` of a Redis span: the command name and its key names only, never a value or any
 * other argument (`HSET {kw}:k:key_01… ` but not the fields, `EVALSHA {kw}:k:… {kw}:h:…` but not
 * the script arguments, `AUTH` alone). keyward's key names hold ids and key hashes, never a
 * secret; values (records, event bodies) stay out of traces. Key positions come from Redis's own
 * command table as ioredis ships it (@ioredis/commands), so EVALSHA/XREAD/MGET are read right.
 */
export function redisStatement(cmdName: string, cmdArgs: readonly CommandArg[] | undefined): string {
  const name = String(cmdName).toLowerCase();
  if (!cmdArgs || cmdArgs.length === 0 || !exists(name)) return name;
  let indexes: number[];
  try {
    indexes = getKeyIndexes(name, cmdArgs as (string | Buffer | number)[]);
  } catch {
    return name;
  }
  const keys: string[] = [];
  for (const i of indexes) {
    if (keys.length === MAX_KEYS) {
      keys.push(`[${indexes.length - MAX_KEYS} more keys]`);
      break;
    }
    const k = cmdArgs[i];
    if (typeof k === 'string') keys.push(k.length > MAX_KEY_LENGTH ? `${k.slice(0, MAX_KEY_LENGTH)}…` : k);
    else if (Buffer.isBuffer(k)) keys.push('[binary key]');
  }
  return keys.length > 0 ? `${name} ${keys.join(' ')}` : name;
}
