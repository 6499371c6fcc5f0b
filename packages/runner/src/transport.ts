import type { FailureClass, JobSpec } from '@switchyard/jobs';

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
  class: FailureClass;
}

/** What goes to the dead-letter topic: the job (or what was received), why, and how often it ran. */
export interface DeadLetter {
  job: JobSpec | null;
  /** For a message that is not a job: its first bytes, as text. */
  raw?: string;
  raw_bytes?: number;
  job_id?: string;
  error: string;
  class: FailureClass;
  attempts: number;
  failed_at: string;
  runner: string;
  source: string;
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
  /** Commits what was acked and leaves; unacked messages go to other runners. Idempotent. */
  stop(): Promise<void>;
}
