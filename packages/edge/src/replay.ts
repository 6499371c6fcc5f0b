import type { BrokerEvent, HistoryPage } from '@switchyard/broker';
import { encodeFrame } from '@switchyard/protocol';

/**
 * Replays (`since`, session resume) read history a page at a time, as the client's socket
 * drains, instead of the whole retained history at once: what a replay costs the node is one
 * page, whatever the history holds, and a replay stops the moment its subscription or
 * connection ends. Across all clients, `ReplayBudget` bounds the bytes read and not yet
 * handed to sockets (MAX_REPLAY_BYTES_IN_FLIGHT).
 */

/** Events in a replay's first page, before it knows how large this channel's events are. */
export const FIRST_PAGE_EVENTS = 8;
/** Most events in one page, however small. */
const MAX_PAGE_EVENTS = 512;
/** What a page is sized to, in bytes, once the event size is known. */
const PAGE_TARGET_BYTES = 256 * 1024;

export interface BudgetHold {
  resize(actual: number): void;
  release(): void;
}

/**
 * A node-wide byte semaphore for replay pages in flight. A single page larger than the whole
 * budget still goes through (alone), so no replay can wait forever.
 */
export class ReplayBudget {
  #inFlight = 0;
  readonly #queue: { bytes: number; grant: () => void }[] = [];

  constructor(readonly maxBytes: number) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves with a hold once `bytes` fit; release it exactly once (more calls do nothing). */
  acquire(bytes: number): Promise<BudgetHold> {
    return new Promise((resolve) => {
      const grant = () => {
        let held = bytes;
        let released = false;
        this.#inFlight += held;
        resolve({
          // A page turned out larger (or smaller) than estimated: hold what it really is until sent.
          resize: (actual) => {
            if (released) return;
            this.#inFlight += actual - held;
            held = actual;
          },
          release: () => {
            if (released) return;
            released = true;
            this.#inFlight -= held;
            this.#next();
          },
        });
      };
      if (this.#queue.length === 0 && this.#fits(bytes)) grant();
      else this.#queue.push({ bytes, grant });
    });
  }

  #fits(bytes: number): boolean {
    return this.#inFlight === 0 || this.#inFlight + bytes <= this.maxBytes;
  }

  #next(): void {
    while (this.#queue.length > 0 && this.#fits(this.#queue[0]!.bytes)) this.#queue.shift()!.grant();
  }
}

/** Per connection: replays waiting for its socket to drain. */
export class ReplayGate {
  /** Made on the first wait: every connection has a gate, few ever wait on it. */
  #waiters: Set<() => void> | undefined;
  /** Since when a replay has been waiting on a socket that does not drain; undefined: it drains. */
  stalledSince: number | undefined;

  get waiting(): boolean {
    return this.#waiters !== undefined && this.#waiters.size > 0;
  }

  /**
   * Resolves once `room()` holds, or with false once `alive()` no longer does. Re-checked on
   * every `wake` (the socket drained, a pressure sweep, the connection closed).
   */
  async until(room: () => boolean, alive: () => boolean): Promise<boolean> {
    while (alive()) {
      if (room()) {
        this.stalledSince = undefined;
        return true;
      }
      this.stalledSince ??= Date.now();
      await new Promise<void>((resolve) => (this.#waiters ??= new Set()).add(resolve));
    }
    return false;
  }

  /** Lets every waiting replay look again. */
  wake(): void {
    const waiters = this.#waiters;
    if (waiters === undefined || waiters.size === 0) return;
    this.#waiters = undefined;
    for (const w of waiters) w();
  }

  /** A socket found with room (drained below the soft limit) is not stalled. */
  drained(): void {
    this.stalledSince = undefined;
  }
}

export interface ReplayTarget {
  readonly gate: ReplayGate;
  /** The client can take more now (its socket's buffered amount is below the soft limit). */
  room(): boolean;
  /** The subscription and connection still exist. */
  alive(): boolean;
  /** Sends one page's frames in order (corked). */
  send(events: readonly BrokerEvent[]): void;
}

export type PageReader = (since: number, limit: number) => Promise<HistoryPage>;

export interface ReplayOutcome {
  /** The last seq sent. */
  last: number;
  /** False when it stopped early (the subscription or connection ended). */
  complete: boolean;
  /** True when history lost events between two pages (trimmed or reset meanwhile). */
  gap: boolean;
}

function frameBytes(events: readonly BrokerEvent[]): number {
  let n = 0;
  for (const e of events) n += e.frame.length;
  return n;
}

export class Replayer {
  constructor(
    readonly budget: ReplayBudget,
    /** The largest an event frame may be: what an unseen page is reserved at. */
    readonly maxEventBytes: number,
  ) {}

  /**
   * A replay's first page, read under the node's budget. It waits one turn of the event loop
   * first: an `unsubscribe` pipelined right behind the `subscribe` lands before any history is
   * read (the reader then reads none).
   */
  async firstPage(read: PageReader, since: number): Promise<HistoryPage> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const hold = await this.budget.acquire(FIRST_PAGE_EVENTS * this.maxEventBytes);
    try {
      return await read(since, FIRST_PAGE_EVENTS);
    } finally {
      // The first page is sent by the caller in the same turn it resolves in.
      hold.release();
    }
  }

  /** True when a first page of `page` did not reach `upTo`: the rest comes from `rest`. */
  static hasMore(page: HistoryPage, last: number): boolean {
    return page.events.length >= FIRST_PAGE_EVENTS && last < page.seq;
  }

  /**
   * The rest of a replay, after `last`, up to `upTo` (the channel's seq when the replay
   * began; later events reach the subscriber live): a page whenever the client has room.
   */
  async rest(read: PageReader, target: ReplayTarget, last: number, upTo: number, epoch: string, avgBytes: number): Promise<ReplayOutcome> {
    let gap = false;
    let avg = Math.max(1, avgBytes);
    while (last < upTo) {
      if (!(await target.gate.until(() => target.room(), () => target.alive()))) return { last, complete: false, gap };
      const limit = Math.max(1, Math.min(MAX_PAGE_EVENTS, Math.floor(PAGE_TARGET_BYTES / avg), upTo - last));
      const hold = await this.budget.acquire(limit * Math.min(this.maxEventBytes, avg * 2));
      try {
        if (!target.alive()) return { last, complete: false, gap };
        const page = await read(last, limit);
        if (!target.alive()) return { last, complete: false, gap };
        const events = page.events.filter((e) => e.seq > last && e.seq <= upTo);
        if (page.epoch !== epoch || events.length === 0) return { last, complete: true, gap: true };
        const bytes = frameBytes(events);
        hold.resize(bytes);
        if (events[0]!.seq !== last + 1) gap = true;
        target.send(events);
        last = events[events.length - 1]!.seq;
        avg = Math.max(1, bytes / events.length);
      } finally {
        hold.release();
      }
    }
    return { last, complete: true, gap };
  }
}

export function averageFrameBytes(events: readonly BrokerEvent[]): number {
  return events.length === 0 ? 1 : frameBytes(events) / events.length;
}

/** What a socket-backed replay needs of a connection. */
export interface ReplaySocket {
  readonly replay: ReplayGate;
  readonly ws: { getBufferedAmount(): number; cork(fn: () => void): void; send(frame: string, binary: boolean, compress: boolean): unknown } | undefined;
  send(frame: string): void;
}

/**
 * The rest of a join's replay, after a first page that did not reach `first.seq`: a page
 * whenever the socket's buffered amount is below `softBytes`. Live events meanwhile wait in the
 * join buffer (counted against the client's byte bound). If history lost events between two
 * pages, the client is told `recovered:false`, as for a reset. Returns the last seq sent.
 */
export async function replayToSocket(
  replayer: Replayer,
  conn: ReplaySocket,
  channel: string,
  read: PageReader,
  alive: () => boolean,
  last: number,
  first: HistoryPage,
  softBytes: number,
): Promise<number> {
  const outcome = await replayer.rest(
    read,
    {
      gate: conn.replay,
      alive,
      room: () => conn.ws!.getBufferedAmount() < softBytes,
      send: (events) => {
        const ws = conn.ws!;
        ws.cork(() => {
          for (const e of events) ws.send(e.frame, false, false);
        });
      },
    },
    last,
    first.seq,
    first.epoch,
    averageFrameBytes(first.events),
  );
  if (outcome.gap && alive()) conn.send(encodeFrame({ type: 'subscription_result', channel, success: true, seq: first.seq, epoch: first.epoch, recovered: false }));
  return outcome.last;
}

/** Events read per window when rewinding, and the most looked back (the default history). */
const REWIND_PAGE_EVENTS = 64;
const REWIND_MAX_EVENTS = 1000;

/**
 * Where a session should resume on a channel when `buffered` bytes never reached the client:
 * `seq` moved back past the newest events whose frames add up to `buffered`. History is read
 * backwards a window at a time, only as far as needed, so closing a slow client costs about what
 * it had buffered, not the channel's whole history. Conservative: a resume may repeat an event,
 * never skip one.
 */
export async function rewindSeq(read: PageReader, seq: number, buffered: number): Promise<number> {
  let bytes = 0;
  let at = seq;
  let hi = seq;
  const floor = Math.max(0, seq - REWIND_MAX_EVENTS);
  while (hi > floor && bytes < buffered) {
    const from = Math.max(floor, hi - REWIND_PAGE_EVENTS);
    const events = (await read(from, hi - from)).events.filter((e) => e.seq <= hi);
    if (events.length === 0) break;
    for (let i = events.length - 1; i >= 0 && bytes < buffered; i--) {
      bytes += events[i]!.frame.length;
      at = events[i]!.seq - 1;
    }
    hi = from;
  }
  return at;
}
