import type { DeadLetter, JobFailureClass, JobSpec } from '@switchyard/jobs';

export type { DeadLetter } from '@switchyard/jobs';

/** One job message handed to the runner. */
export interface Delivery {
  readonly value: Buffer | null;
  /** Runs already made (0 for a new job; n on the message of retry n). */
  readonly attempt: number;
  /** A scheduled retry: not to run before this time (ms since the epoch). */
  readonly notBefore?: number;
  /** Where it came from, for logs and dead letters (`new_jobs[2]@17`). */
  readonly source: string;
  /**
   * The message is dealt with — finished, dead-lettered, or its retry is queued — and need
   * not be delivered again. A message never acked is delivered again (to this runner after
   * a rebalance, or to another one): that is how a job survives a runner that dies.
   */
  ack(): void;
}

export interface RetryRequest {
  job: JobSpec;
  /** Runs made so far; the retry will be run number attempt + 1. */
  attempt: number;
  notBefore: number;
  error: string;
  class: JobFailureClass;
}

/** Messages waiting on the partitions assigned to this runner (latest offset minus committed). */
export interface LagReport {
  /** The jobs topic: new jobs not yet dealt with. */
  jobs: number;
  /** The retry topic (it includes retries waiting out their delay). */
  retry: number;
  /** When it was measured (ms since the epoch). */
  measuredAt: number;
}

export type TransportStatus = 'ok' | 'connecting' | 'down' | 'disabled';

/** Where jobs come from and where retries and dead letters go: Kafka, or the in-process queue. */
export interface JobTransport {
  readonly kind: 'kafka' | 'memory';
  /** Starts delivering; `sink` is called synchronously, one delivery at a time. */
  start(sink: (delivery: Delivery) => void): Promise<void>;
  /** Stop fetching new messages (the runner is full, or stopping). */
  pause(): void;
  resume(): void;
  retry(request: RetryRequest): Promise<void>;
  deadLetter(letter: DeadLetter): Promise<void>;
  health(): { status: TransportStatus; ready: boolean };
  /** The latest consumer lag measurement; undefined before the first one (or without Kafka). */
  lag?(): LagReport | undefined;
  /** Commits what was acked and leaves; unacked messages go to other runners. Idempotent. */
  stop(): Promise<void>;
}
