import type { BrokerEvent } from '@switchyard/broker';

/** Events with this name are coalescable without being marked. */
const PROGRESS_EVENT = 'job.progress';
const COALESCE_FIELD = ',"coalesce":"';
const TIMESTAMP_FIELD = '"timestamp":"';

/**
 * The coalescing key of an event frame, without parsing it: `job.progress` events coalesce
 * per channel, and a publish marked `"coalesce":"<key>"` carries that key as the frame's last
 * field (after `timestamp`, so nothing in `data` can be mistaken for it). Undefined: never
 * coalesced.
 */
export function coalesceKey(frame: string): string | undefined {
  // {"type":"event","channel":"<c>","seq":<n>,"event":"<e>",...
  const seqAt = frame.indexOf('"seq":');
  const eventAt = seqAt < 0 ? -1 : frame.indexOf(',', seqAt) + 1;
  if (eventAt > 0 && frame.startsWith(`"event":"${PROGRESS_EVENT}"`, eventAt)) return PROGRESS_EVENT;
  const at = frame.lastIndexOf(COALESCE_FIELD);
  if (at < 0 || at < frame.lastIndexOf(TIMESTAMP_FIELD) || !frame.endsWith('"}')) return undefined;
  return frame.slice(at + COALESCE_FIELD.length, -2);
}

/** The frame with `"coalesced": n` added: how many earlier events of its key it replaces. */
export function withCoalesced(frame: string, replaced: number): string {
  return replaced === 0 ? frame : `${frame.slice(0, -1)},"coalesced":${replaced}}`;
}

interface Queued {
  /** Undefined once superseded: its frame is let go at once, not when the queue reaches it. */
  event: BrokerEvent | undefined;
  readonly channel: string;
  readonly seq: number;
  readonly key: string | undefined;
  replaced: number;
  superseded: boolean;
}

/**
 * A slow connection's own queue. While a client cannot keep up, its channels leave the
 * native uWS fan-out and their events wait here: coalescable ones keep only the latest per
 * key (counting what they replace), everything else is kept in order. Nothing is dropped but
 * superseded coalescable events.
 */
export class SlowLane {
  /** Channel → the seq after which this lane took over from the uWS topic. */
  readonly channels = new Map<string, number>();
  /** Channel → last seq actually handed to the socket from this lane. */
  readonly sent = new Map<string, number>();
  #queue: Queued[] = [];
  #head = 0;
  readonly #latest = new Map<string, Queued>();
  /**
   * Bytes of every frame held, coalescable ones included: each distinct coalesce key is a
   * frame held until sent, so a client publishing under ever new keys cannot grow this
   * lane past MAX_BACKPRESSURE_BYTES.
   */
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#head >= this.#queue.length;
  }

  enqueue(event: BrokerEvent): void {
    const from = this.channels.get(event.channel);
    if (from === undefined || event.seq <= from) return;
    const key = coalesceKey(event.frame);
    const item: Queued = { event, channel: event.channel, seq: event.seq, key, replaced: 0, superseded: false };
    if (key !== undefined) {
      const scoped = `${event.channel}\u0000${key}`;
      const previous = this.#latest.get(scoped);
      if (previous !== undefined && !previous.superseded) {
        previous.superseded = true;
        this.#bytes -= previous.event!.frame.length;
        previous.event = undefined;
        item.replaced = previous.replaced + 1;
      }
      this.#latest.set(scoped, item);
    }
    this.#bytes += event.frame.length;
    this.#queue.push(item);
  }

  /** Sends in order while `canSend()` holds; true when the queue is empty. */
  flush(send: (frame: string) => void, canSend: () => boolean): boolean {
    while (this.#head < this.#queue.length && canSend()) {
      const item = this.#queue[this.#head++]!;
      const event = item.event;
      if (item.superseded || event === undefined) continue;
      if (item.key !== undefined) this.#latest.delete(`${item.channel}\u0000${item.key}`);
      this.#bytes -= event.frame.length;
      item.event = undefined;
      // The channel left the lane (unsubscribed, or its right revoked): what it queued is not sent.
      if (!this.channels.has(item.channel)) continue;
      send(withCoalesced(event.frame, item.replaced));
      this.sent.set(item.channel, item.seq);
    }
    if (this.#head >= this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      return true;
    }
    // Keep the array from growing without bound while a client trickles along.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return false;
  }

  /** Where a session stands on a channel served by this lane: the last seq sent from it. */
  position(channel: string): number | undefined {
    return this.sent.get(channel) ?? this.channels.get(channel);
  }
}
