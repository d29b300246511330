import type { MachineInfo } from './machine';
import type { ProfileSummary } from './profile-summary';

/** Everything one bench run measured; written to docs/benchmarks.json and rendered into docs/BENCHMARKS.md. */

export interface BenchSettings {
  durationS: number;
  warmupS: number;
  /** Each throughput measurement is repeated this many times, interleaved with its floor in mirrored pairs of reps; ratios are `pairedRatio` (median over the pairs). */
  reps: number;
  h2loadClients: number;
  h2loadStreams: number;
  streamClients: number;
  streamWindow: number;
  /** Messages per HTTP/2 stream in the h2load-driven streaming measurement. */
  h2loadStreamMessages: number;
  maxKeys: number;
  /** Keys revoked one after another in the revocation propagation scenario. */
  revokeKeys: number;
}

/** One throughput measurement of a server under h2load. */
export interface ThroughputRun {
  name: string;
  reqPerSec: number;
  /** Every run's req/s (reps), best first is not implied. */
  allRuns: number[];
  meanMs: number;
  succeeded: number;
  status2xx: number;
  failed: number;
  /** Response DATA bytes per successful request, and what one real answer weighs. */
  dataBytesPerRequest: number;
  expectedResponseBytes: number;
  serverCores: number;
  /**
   * The server's CPU time per answered request, µs, every run in rep order (all of the server
   * process's threads: with tracing, the export worker and V8's helper threads too, which run on
   * the core h2load leaves idle).
   */
  allCpuUsPerRequest: number[];
  /** A helper process's cores (redis-server when the server reads Redis on every call, the OTLP sink). */
  helperName?: string;
  helperCores?: number;
  h2loadCores: number;
  /** Cores busy machine-wide minus server, redis and load generator: other processes. */
  otherCores: number;
  /** Other processes used more than DISTURBED_CORES even in the least disturbed attempt. */
  disturbed: boolean;
  command: string;
}

export interface LatencyRun {
  name: string;
  targetRps: number;
  achievedRps: number;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  failed: number;
  serverCores: number;
  h2loadCores: number;
  otherCores: number;
  disturbed: boolean;
  command: string;
}

export interface StreamRun {
  name: string;
  messagesPerSec: number;
  allRuns: number[];
  /** "node" = N grpc-js client processes; "h2load" = h2load, K messages per HTTP/2 stream. */
  driver: 'node' | 'h2load';
  serverCores: number;
  loadGenCores: number;
  otherCores: number;
  disturbed: boolean;
  checked?: number;
  bad?: number;
}

export interface LoadStage {
  keys: number;
  added: number;
  seconds: number;
  perSec: number;
}

export interface TargetResult {
  /** The scenario that measured it. */
  scenario: string;
  id: string;
  description: string;
  target: string;
  value: string;
  pass: boolean;
}

export interface BenchResults {
  date: string;
  machine: MachineInfo & { h2load: string; redis: string; natsServer: string; grpcJs: string };
  settings: BenchSettings;
  /** Busy cores machine-wide just before the bench started (other workloads). */
  backgroundCores: number;
  /** The scenarios run, in order: every one, or those BENCH_ONLY named. */
  scenarios: string[];
  /** Each scenario's results by scenario name (types in the scenario modules). */
  results: Record<string, unknown>;
  /** Seconds each scenario took. */
  seconds: Record<string, number>;
  targets: TargetResult[];
  profiles: Record<string, ProfileSummary>;
  totalSeconds: number;
}
