import { request } from 'node:http';

/*
 * A small parser of the Prometheus text exposition format (version 0.0.4), enough for tests:
 * `# HELP` / `# TYPE` lines and samples `name{label="value",...} value [timestamp]`, with the
 * escapes of label values (\\, \", \n). It checks what it reads, so a malformed exposition fails
 * the test rather than being half read.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name -> type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string): number {
  switch (text.toLowerCase()) {
    case '+inf':
    case 'inf':
      return Infinity;
    case '-inf':
      return -Infinity;
    case 'nan':
      return NaN;
    default: {
      const n = Number(text);
      if (text === '' || Number.isNaN(n)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
      return n;
    }
  }
}

function parseSample(line: string): Sample {
  const m = NAME.exec(line);
  if (!m) throw new Error(`no metric name in ${JSON.stringify(line)}`);
  const name = m[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const ln = LABEL_NAME.exec(line.slice(i));
      if (!ln) throw new Error(`bad label name at ${i} in ${JSON.stringify(line)}`);
      i += ln[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`expected =" at ${i} in ${JSON.stringify(line)}`);
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          value += e === 'n' ? '\n' : e;
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      labels[ln[0]] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`expected , or } at ${i} in ${JSON.stringify(line)}`);
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2) throw new Error(`bad sample ${JSON.stringify(line)}`);
  return { name, labels, value: parseValue(rest[0]) };
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (m?.[1] === 'TYPE') types.set(m[2], m[3]);
      else if (m?.[1] === 'HELP') help.set(m[2], m[3]);
      continue;
    }
    samples.push(parseSample(line));
  }
  return { samples, types, help };
}

/** The one sample of `name` whose labels include `labels`; undefined when none, an error when several. */
export function sampleValue(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** The sum of every sample of `name` whose labels include `labels` (0 when none). */
export function sumOf(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return e.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** GET http://<addr>/metrics, parsed; fails on a non-200 answer or a wrong content type. */
export function scrape(addr: string): Promise<Exposition & { contentType: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${addr}/metrics`, { method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const contentType = String(res.headers['content-type'] ?? '');
        if (res.statusCode !== 200) return reject(new Error(`GET /metrics answered ${res.statusCode}: ${body}`));
        if (!contentType.startsWith('text/plain')) return reject(new Error(`GET /metrics content-type ${contentType}`));
        try {
          resolve({ ...parsePrometheusText(body), contentType });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}
