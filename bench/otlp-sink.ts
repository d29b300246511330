import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * An OTLP/HTTP trace sink for the tracing scenario, run as its own process: answers
 * `POST /v1/traces` at once with an empty ExportTraceServiceResponse (full success) and throws
 * the body away after counting its spans. Spans are counted by walking the protobuf wire format
 * (ExportTraceServiceRequest.resource_spans = 1 → ResourceSpans.scope_spans = 2 →
 * ScopeSpans.spans = 2 → Span.name = 5), which costs far less than decoding them, so the sink
 * takes little CPU from the measured sidecar. (test/support/otlp-receiver.ts decodes and keeps
 * every span, which is what tests need and too slow here.)
 *
 *   node otlp-sink.js      prints {"port": N} once listening on 127.0.0.1
 *   GET /stats             {"requests", "spans", "bytes", "rejected", "names": {name: count}}
 */

interface Stats {
  requests: number;
  spans: number;
  bytes: number;
  rejected: number;
  names: Record<string, number>;
}

const stats: Stats = { requests: 0, spans: 0, bytes: 0, rejected: 0, names: {} };

/** Calls `onField(field, start, end)` for every length-delimited field in buf[start, end). */
function eachLenField(buf: Buffer, start: number, end: number, onField: (field: number, from: number, to: number) => void): void {
  let pos = start;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new Error('truncated varint');
      const b = buf[pos++];
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  };
  while (pos < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = varint();
        if (pos + len > end) throw new Error('truncated field');
        onField(field, pos, pos + len);
        pos += len;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
  }
}

function countSpans(body: Buffer): void {
  eachLenField(body, 0, body.length, (f1, a1, b1) => {
    if (f1 !== 1) return;
    eachLenField(body, a1, b1, (f2, a2, b2) => {
      if (f2 !== 2) return;
      eachLenField(body, a2, b2, (f3, a3, b3) => {
        if (f3 !== 2) return;
        stats.spans++;
        eachLenField(body, a3, b3, (f4, a4, b4) => {
          if (f4 !== 5) return;
          const name = body.toString('utf8', a4, b4);
          stats.names[name] = (stats.names[name] ?? 0) + 1;
        });
      });
    });
  });
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      if (req.method !== 'POST' || req.url !== '/v1/traces') throw new Error(`${req.method} ${req.url}`);
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      stats.requests++;
      stats.bytes += body.length;
      countSpans(body);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    } catch {
      stats.rejected++;
      res.writeHead(400).end();
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
