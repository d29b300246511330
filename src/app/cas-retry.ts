/**
 * Compare-and-set retries. A read-modify-write that lost to a concurrent writer retries from a
 * fresh read; when many writers update one record at once, retrying at once makes them collide
 * again, so each retry first waits a random time that doubles per attempt (full jitter, capped).
 */
export const MAX_CAS_ATTEMPTS = 10;
const BASE_MS = 1;
const CAP_MS = 50;

/** Waits before retry number `attempt` (1 = after the first failure). */
export function casBackoff(attempt: number, random: () => number = Math.random): Promise<void> {
  const ms = Math.floor(random() * Math.min(CAP_MS, BASE_MS * 2 ** attempt));
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}
