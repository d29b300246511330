import { KeyState, keyStateToJSON, type ApiKey } from '../gen/keyward/v1/api_key.pb';

/** Human-readable output of the CLI; `--json` prints the proto JSON form instead. */
export function stateName(s: KeyState): string {
  return keyStateToJSON(s).replace('KEY_STATE_', '').toLowerCase();
}

function time(d: Date | undefined): string {
  return d ? d.toISOString() : '-';
}

export function formatKey(k: ApiKey): string {
  const rows: [string, string][] = [
    ['id', k.id],
    ['service', k.service],
    ['owner', k.owner || '-'],
    ['name', k.name || '-'],
    ['hint', k.hint],
    ['state', stateName(k.state)],
    ['scopes', k.scopes.join(' ') || '-'],
    ['metadata', Object.entries(k.metadata).map(([a, b]) => `${a}=${b}`).join(' ') || '-'],
    ['created', time(k.createTime)],
    ['updated', time(k.updateTime)],
    ['not before', time(k.notBeforeTime)],
    ['expires', time(k.expireTime)],
    ['last used', time(k.lastUsedTime)],
    ['usage count', String(k.usageCount)],
  ];
  if (k.revokeTime) rows.push(['revoked', `${time(k.revokeTime)} ${k.revokeReason}`.trim()]);
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n');
}

export function formatTable(keys: ApiKey[]): string {
  const head = ['ID', 'SERVICE', 'OWNER', 'NAME', 'HINT', 'STATE', 'EXPIRES'];
  const rows = keys.map((k) => [k.id, k.service, k.owner || '-', k.name || '-', k.hint, stateName(k.state), time(k.expireTime)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** One line (or block) of command output on stdout. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Prints a secret shown once (create, rotate, claim), with why it must be stored now. */
export function printSecret(secret: string, why = 'keyward keeps only its hash and will not show it again.'): void {
  print(`\nsecret  ${secret}\n\nStore the secret now: ${why}`);
}
