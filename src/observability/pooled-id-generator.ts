import { randomFillSync } from 'node:crypto';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';

/*
 * Trace and span ids cut from a pool of random hex: one randomFillSync and one hex encoding per
 * 4 KiB of ids (about 170 spans) instead of a Buffer write and a `toString('hex')` per id, which
 * the SDK's RandomIdGenerator does and which showed in the profile of a traced ValidateKey. V8
 * slices the pool string without copying it; the pool is dropped once no id refers to it.
 */

const POOL_BYTES = 4096;
const ZERO_SPAN = '0000000000000000';
const ZERO_TRACE = '00000000000000000000000000000000';

export class PooledIdGenerator implements IdGenerator {
  private readonly bytes = Buffer.allocUnsafe(POOL_BYTES);
  private pool = '';
  private at = 0;

  generateTraceId(): string {
    const id = this.take(32);
    return id === ZERO_TRACE ? this.generateTraceId() : id; // all-zero is invalid (W3C)
  }

  generateSpanId(): string {
    const id = this.take(16);
    return id === ZERO_SPAN ? this.generateSpanId() : id;
  }

  private take(chars: number): string {
    if (this.at + chars > this.pool.length) {
      randomFillSync(this.bytes);
      this.pool = this.bytes.toString('hex');
      this.at = 0;
    }
    const id = this.pool.substring(this.at, this.at + chars);
    this.at += chars;
    return id;
  }
}
