import type { Broker } from '@switchyard/broker';
import type { Json } from '@switchyard/protocol';
import type { JobEvent } from './job.js';
import { NOOP_LOGGER, type JobLogger } from './logger.js';

/** Tries per event while the broker is unreachable, and the pause between them. */
const PUBLISH_TRIES = 3;
const PUBLISH_RETRY_MS = 200;

export function jobChannelOf(jobId: string): string {
  return `job:${jobId}`;
}

/**
 * Publishes job events on `job:<id>` through the cluster broker, so every edge's subscribers
 * see them with a seq and history (a client that subscribes late with `since: 0` gets them
 * all, in order). Never throws: an event that cannot be published after a few tries is
 * logged; the status hash still holds the job's state.
 */
export class JobEvents {
  readonly #broker: Broker;
  readonly #log: JobLogger;

  constructor(broker: Broker, logger: JobLogger = NOOP_LOGGER) {
    this.#broker = broker;
    this.#log = logger;
  }

  async emit(jobId: string, event: JobEvent, data: { [key: string]: Json | undefined } = {}): Promise<number | undefined> {
    const payload: { [key: string]: Json } = { job_id: jobId };
    for (const [k, v] of Object.entries(data)) if (v !== undefined) payload[k] = v;
    const dataJson = JSON.stringify(payload);
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.#broker.publish({ channel: jobChannelOf(jobId), event, dataJson })).seq;
      } catch (err) {
        if (attempt >= PUBLISH_TRIES) {
          this.#log.warn({ job_id: jobId, event, err: (err as Error).message }, 'job event could not be published');
          return undefined;
        }
        await new Promise((r) => setTimeout(r, PUBLISH_RETRY_MS * attempt));
      }
    }
  }
}
