import type { JobRecord } from '@switchyard/jobs';
import type { Json } from '@switchyard/protocol';

/**
 * Who may subscribe to `job:<id>` and cancel it, and the job API behind `/jobs` (jobs.ts;
 * @switchyard/jobs' JobService implements it). Built from KAFKA_SERVERS when not given.
 */
export interface JobAccess {
  ownerOf(jobId: string): Promise<string | undefined>;
  /** `byUser` undefined: the caller has checked the rights itself. */
  cancel?(jobId: string, byUser: string | undefined): Promise<'cancelled' | 'not_found' | 'forbidden' | 'finished'>;
  /** `POST /jobs`: validates and queues a job owned by `owner`; throws a JobError. */
  submit?(body: Record<string, unknown>, owner: string): Promise<{ jobId: string }>;
  /** `GET /jobs/:id`. */
  status?(jobId: string): Promise<{ owner?: string } | undefined>;
  /**
   * The job's status and the seq (in `epoch`) of the last job event it reflects, for the
   * `snapshot` frame a `job:<id>` subscription starts with; undefined when there is none.
   */
  snapshot?(jobId: string): Promise<JobSnapshotView | undefined>;
  /** The latest jobs, newest first, for the console (`GET /admin/jobs`). */
  recent?(limit: number): Promise<readonly JobRecord[]>;
  /** `/health`'s `kafka.status`. */
  health?(): { status: string };
  /** Called once when the node stops, before its broker closes. */
  close?(): Promise<void>;
}

/** A job's status as of the job event with seq `seq` (in `epoch`); see JobAccess.snapshot. */
export interface JobSnapshotView {
  seq: number;
  epoch: string;
  data: Json;
}
