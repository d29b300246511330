import type { Redactor } from './log-redaction';
import type { EncodedSpanBatch } from './span-batch-codec';

/*
 * The last line of defence for traces: before spans leave the process, every string they carry
 * (name, attributes, event and link attributes, status message) goes through the same redaction
 * as log lines. keyward's own spans carry ids and hints only, and the gRPC server spans record no
 * metadata; this catches what a library might add (an error message quoting its input, say).
 *
 * It runs in the export worker, on the encoded batch: every span string is an entry of the
 * batch's string table, so a batch of 512 alike spans redacts its dozen distinct strings once
 * rather than each span's; the rare values outside the table (array attributes, events, links)
 * are walked whole.
 */

/** Nothing shorter can hold a secret the redactor knows (`Bearer x` is the shortest match). */
const MIN_SECRET_TEXT = 8;

/** The batch with every string that holds a secret redacted (the batch itself is not changed). */
export function redactBatch(batch: EncodedSpanBatch, r: Redactor): EncodedSpanBatch {
  const strings = batch.strings.map((s) => (s.length < MIN_SECRET_TEXT ? s : r.redactString(s)));
  const values = batch.values.length === 0 ? batch.values : batch.values.map((v) => r.redact(v));
  return { ...batch, strings, values };
}
