import { InvalidArgumentError, type Command } from 'commander';
import type { Metadata } from '@grpc/grpc-js';
import { parseDuration } from '../config/duration';
import { ClaimRotatedSecretResponse, RotateKeyResponse, type KeyAdminServiceClient } from '../gen/keyward/v1/key_admin_service.pb';
import { call } from './admin-client';
import { msToDuration } from '../codec/policy-mapping';
import { formatKey, print, printSecret } from './format';

/** What a command needs of the connection `keys` sets up (see main.ts). */
export interface AdminConnection {
  client: KeyAdminServiceClient;
  metadata: Metadata;
  timeoutMs: number;
  json: boolean;
}

function grace(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 1h, 30m or 0s');
  return ms;
}

/** `keyward keys rotate` and `keyward keys claim`. */
export function addRotationCommands(keys: Command, connect: (cmd: Command) => AdminConnection): void {
  keys
    .command('rotate <key-id>')
    .description('replace a key by a successor with the same configuration; prints the new secret, shown only once')
    .option('--grace <duration>', 'how long the old key keeps validating (0s: retire it at once; default: its policy\'s, else the server\'s)', grace)
    .action(async (keyId: string, o: { grace?: number }, cmd: Command) => {
      const c = connect(cmd);
      const res = await call(c.client.rotateKey.bind(c.client), { keyId, gracePeriod: msToDuration(o.grace) }, c.metadata, c.timeoutMs);
      if (c.json) return print(JSON.stringify(RotateKeyResponse.toJSON(res), null, 2));
      print(formatKey(res.successor!));
      const end = res.key?.graceEndTime;
      print(`\nreplaces ${keyId}, which ${end && end.getTime() > Date.now() ? `keeps validating until ${end.toISOString()}` : 'no longer validates'}`);
      printSecret(res.secret);
    });

  keys
    .command('claim <key-id>')
    .description('take the sealed secret of a key keyward rotated itself (policy strategy auto), once, within its grace period')
    .action(async (keyId: string, _o, cmd: Command) => {
      const c = connect(cmd);
      const res = await call(c.client.claimRotatedSecret.bind(c.client), { keyId }, c.metadata, c.timeoutMs);
      if (c.json) return print(JSON.stringify(ClaimRotatedSecretResponse.toJSON(res), null, 2));
      print(formatKey(res.key!));
      printSecret(res.secret, 'the sealed copy was destroyed and cannot be claimed again.');
    });
}
