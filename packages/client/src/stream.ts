/**
 * Per-channel ordering: the piece that makes "every event once, in order" hold across
 * reconnects, resumes and replays. Pure logic — no sockets, no timers.
 *
 * The server numbers each channel's events 1, 2, 3, ... (`seq`). The stream remembers the
 * last seq it handed to the application and:
 * - drops anything at or below it (a replay after a resume repeats events: duplicates);
 * - hands over the next one at once, then whatever it had buffered that now follows;
 * - buffers an event that comes early (seq > last + 1) and asks for a fill: a `subscribe`
 *   with `since = last`, whose replay brings the missing ones;
 * - after a `subscription_result` with `recovered: false` (the server no longer holds what
 *   was missed) or a new `epoch` (the channel's history was reset, seqs start over), reports
 *   a gap or a reset and takes the next event as its new starting point;
 * - accepts the seqs a slow connection's server skipped on purpose: an event marked
 *   `coalesced: n` replaces n earlier events of its coalescing key (the latest `job.progress`
 *   stands for the ones before it), so up to n missing seqs below it are not waited for.
 */

/** An event as the application sees it. */
export interface ChannelEvent {
  /**
   * `<epoch>:<seq>`: unique per channel even across a history reset (which restarts seqs in
   * a new epoch), so it can key a list (React `key`). A degraded event (no seq) gets
   * `<epoch>:d<n>`, unique within this client.
   */
  id: string;
  channel: string;
  /** Per-channel sequence number; null for a `degraded` event (see below). */
  seq: number | null;
  event: string;
  data: unknown;
  /** ISO 8601, when the event was published. */
  timestamp: string;
  /**
   * True for an event the server delivered while its broker was unreachable: it reached
   * only the subscribers on that node, has no seq and is not in history. It is handed over
   * as it comes, outside the ordering (it cannot be deduplicated).
   */
  degraded: boolean;
  /**
   * How many earlier events of the same coalescing key (e.g. older `job.progress`) this one
   * replaces: the server skipped them because this client was not keeping up. 0 normally.
   */
  coalesced: number;
}

let degradedCount = 0;

/** The id of an event: `<epoch>:<seq>` (see `ChannelEvent.id`). */
export function eventId(epoch: string | undefined, seq: number | null): string {
  return seq === null ? `${epoch ?? ''}:d${++degradedCount}` : `${epoch ?? ''}:${seq}`;
}

/** Events were lost (`gap`), or the channel's history was reset and seqs restarted (`reset`). */
export interface StreamGap {
  kind: 'gap' | 'reset';
  channel: string;
  /** The last seq the application saw before it; null when it had seen none. */
  lastSeq: number | null;
  /** The channel's latest seq according to the server. */
  seq: number;
  /** The channel's history epoch according to the server. */
  epoch: string | undefined;
}

export interface SubscriptionResultInfo {
  seq: number;
  epoch: string | undefined;
  recovered: boolean | undefined;
}

export interface ResultOutcome {
  /** A gap or reset to report to the application. */
  signal?: StreamGap;
  /**
   * The server restored the channel by itself (a resumed session) and it has moved past this
   * stream's position: the server's replay may start past what really arrived. The client
   * checks once the replay is through and asks for a fill if the stream is still behind.
   */
  needFill: boolean;
}

export interface PushOutcome {
  /** Events to hand to the application, in this order. */
  deliver: ChannelEvent[];
  /** An event came early: ask for a fill (unless one is already on its way). */
  needFill: boolean;
}

/** Out-of-order events kept per channel while a fill is on its way. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 1_000;

/** Where the next event may start after a gap or reset. */
type Rebase = 'none' | 'forward' | 'any';

export class ChannelStream {
  readonly channel: string;
  readonly #maxBuffered: number;
  /** Seq of the last event handed over; undefined before the stream has a starting point. */
  #last: number | undefined;
  /** The server's latest seq at the last `subscription_result`, used until #last is known. */
  #hint: number | undefined;
  #epoch: string | undefined;
  #rebase: Rebase = 'none';
  /** Early events by seq; null marks a seq the server coalesced away (nothing to hand over). */
  readonly #buffer = new Map<number, ChannelEvent | null>();
  /**
   * Coalesced-away events announced (`coalesced: n` on the event at seq `below`) and not yet
   * matched to missing seqs. An announcement only explains seqs below its own event, so it
   * lapses once the stream has passed that event.
   */
  #credits: { below: number; n: number }[] = [];
  /** The buffer overflowed and was dropped: only a replay can bring those events now. */
  #overflowed = false;
  /**
   * The position was taken from the latest seq of a first subscribe without `since`; a
   * snapshot that follows moves it back to the snapshot's seq (the server sends what came after).
   */
  #fromLatest = false;

  constructor(channel: string, options: { since?: number | undefined; maxBuffered?: number } = {}) {
    this.channel = channel;
    this.#last = options.since;
    this.#maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED_EVENTS;
  }

  /** The seq of the last event handed to the application (undefined: none yet). */
  get lastSeq(): number | undefined {
    return this.#last;
  }

  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** Early events held back. */
  get buffered(): number {
    let n = 0;
    for (const e of this.#buffer.values()) if (e !== null) n++;
    return n;
  }

  /** Whether events are held back waiting for missing seqs, or were given up on: a fill would bring them. */
  get waiting(): boolean {
    return this.#overflowed || this.buffered > 0;
  }

  /** The `since` to send when (re)subscribing, so the server replays exactly what is missing. */
  get resumeFrom(): number | undefined {
    return this.#last ?? this.#hint;
  }

  /**
   * A successful `subscription_result`. `since` is what the subscribe that caused it sent
   * (undefined for one the server sent by itself: a session resume or a reset notice).
   */
  onSubscribed(result: SubscriptionResultInfo, since: number | undefined): ResultOutcome {
    const lastSeq = this.#last ?? null;
    const epochChanged = this.#epoch !== undefined && result.epoch !== undefined && result.epoch !== this.#epoch;
    this.#fromLatest = false;
    this.#credits = [];
    this.#overflowed = false;
    if (result.epoch !== undefined) this.#epoch = result.epoch;
    this.#hint = result.seq;
    if (epochChanged) {
      // Seqs started over: nothing said before this point can be compared with what follows.
      this.#buffer.clear();
      this.#last = undefined;
      this.#rebase = 'any';
      return { signal: { kind: 'reset', channel: this.channel, lastSeq, seq: result.seq, epoch: result.epoch }, needFill: false };
    }
    if (result.recovered === false) {
      this.#buffer.clear();
      this.#rebase = this.#last === undefined ? 'any' : 'forward';
      return { signal: { kind: 'gap', channel: this.channel, lastSeq, seq: result.seq, epoch: result.epoch }, needFill: false };
    }
    if (this.#last === undefined) {
      // First subscription: start after `since` when one was asked for, else after the latest.
      if (this.#rebase === 'none') {
        this.#last = since ?? result.seq;
        this.#fromLatest = since === undefined;
      }
      return { needFill: false };
    }
    // A resume the server started by itself replays from where *it* thinks this client
    // stood, which after a crash can be ahead of what really arrived. When the channel has
    // moved past our position, ask for a replay from our own position; duplicates are dropped.
    return { needFill: since === undefined && result.seq > this.#last };
  }

  /**
   * A `snapshot` frame: the channel's state as of `seq`. The server follows it with the events
   * after `seq` — and after the subscribe's `since`, or where a resumed session stood, when
   * those are further — so the position becomes `seq`, or stays where it was if further on.
   * Returns held-back events that now follow in order.
   */
  onSnapshot(seq: number, epoch: string | undefined): PushOutcome {
    if (epoch !== undefined && this.#epoch !== undefined && epoch !== this.#epoch) {
      // A snapshot from another epoch than the subscription's: seqs restarted in between.
      this.#buffer.clear();
      this.#last = seq;
    } else if (this.#fromLatest || this.#last === undefined) this.#last = seq;
    else this.#last = Math.max(this.#last, seq);
    if (epoch !== undefined) this.#epoch = epoch;
    this.#fromLatest = false;
    if (this.#rebase === 'any') this.#rebase = 'forward';
    const deliver: ChannelEvent[] = [];
    for (let next = this.#buffer.get(this.#last + 1); next !== undefined; next = this.#buffer.get(this.#last + 1)) {
      this.#buffer.delete(this.#last + 1);
      this.#last += 1;
      if (next !== null) deliver.push(next);
    }
    for (const key of this.#buffer.keys()) if (key <= this.#last) this.#buffer.delete(key);
    return { deliver, needFill: deliver.length === 0 && this.#buffer.size > 0 };
  }

  /** One `event` frame of this channel. */
  push(event: ChannelEvent): PushOutcome {
    this.#fromLatest = false;
    if (event.seq === null) return { deliver: [event], needFill: false };
    const seq = event.seq;
    if (this.#rebase !== 'none') {
      if (this.#rebase === 'any' || this.#last === undefined || seq > this.#last) {
        this.#rebase = 'none';
        this.#buffer.clear();
        this.#last = seq;
        return { deliver: [event], needFill: false };
      }
      return { deliver: [], needFill: false };
    }
    if (this.#last === undefined) {
      // No starting point yet (an event before any subscription_result): take it as one.
      this.#last = seq;
      return { deliver: [event], needFill: false };
    }
    if (seq <= this.#last) return { deliver: [], needFill: false };
    if (event.coalesced > 0) this.#credits.push({ below: seq, n: event.coalesced });
    if (seq > this.#last + 1) {
      const held = this.#buffer.get(seq);
      if (held === undefined || held === null) {
        if (this.#buffer.size >= this.#maxBuffered) {
          // Too far behind to hold on: the fill's replay brings these again.
          this.#buffer.clear();
          this.#credits = [];
          this.#overflowed = true;
          return { deliver: [], needFill: true };
        }
        this.#buffer.set(seq, event);
      }
      if (!this.#explainGaps()) return { deliver: [], needFill: true };
    } else {
      this.#buffer.set(seq, event);
    }
    const deliver: ChannelEvent[] = [];
    for (let next = this.#buffer.get(this.#last + 1); next !== undefined; next = this.#buffer.get(this.#last + 1)) {
      this.#buffer.delete(this.#last + 1);
      this.#last += 1;
      if (next !== null) deliver.push(next);
    }
    // Anything still buffered is at or below #last only if it was a duplicate; drop those.
    for (const key of this.#buffer.keys()) if (key <= this.#last) this.#buffer.delete(key);
    const last = this.#last;
    if (this.#credits.length > 0) this.#credits = this.#credits.filter((c) => c.below > last);
    // Still waiting (for a gap a later coalesced event may explain, or a fill)? Say so only
    // when nothing was handed over: in-order progress means a replay is under way.
    return { deliver, needFill: deliver.length === 0 && this.#buffer.size > 0 };
  }

  /**
   * Matches missing seqs below the newest held event against announced coalescing: when the
   * server has said it skipped at least that many, they are marked as skipped. True when no
   * seq below the newest held event is missing any more.
   */
  #explainGaps(): boolean {
    let highest = 0;
    for (const key of this.#buffer.keys()) if (key > highest) highest = key;
    let credit = 0;
    for (const c of this.#credits) credit += c.n;
    const missing: number[] = [];
    for (let q = this.#last! + 1; q < highest && missing.length <= credit; q++) if (!this.#buffer.has(q)) missing.push(q);
    if (missing.length === 0) return true;
    if (missing.length > credit) return false;
    for (const q of missing) this.#buffer.set(q, null);
    // Spend the announcements oldest first.
    let spend = missing.length;
    for (const c of this.#credits) {
      const used = Math.min(c.n, spend);
      c.n -= used;
      spend -= used;
    }
    this.#credits = this.#credits.filter((c) => c.n > 0);
    return true;
  }
}
