/**
 * The channels the application wants, each with its `ChannelStream` (dedupe, order, gap
 * detection): subscribing, keeping them across reconnects and session resumes, the positions
 * a resume sends, and asking for a replay when events went missing. It talks to the server
 * only through the `Connection`, which calls it back through `ConnectionHooks`.
 */
import { isValidChannel, type ClientFrame, type EventFrame, type SnapshotFrame, type SubscriptionResultFrame } from '@switchyard/protocol';
import { fullJitterDelay } from './backoff.js';
import type { Connection, ConnectionHooks } from './connection.js';
import type { Emitter } from './emitter.js';
import { ClientClosedError, InvalidArgumentError, ServerError, SwitchyardError, TimeoutError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { Timer } from './requests.js';
import { ChannelStream, eventId, type ChannelEvent } from './stream.js';
import type { ClientEvents, RequestOptions, SubscribeOptions, SubscriptionInfo } from './types.js';

/** Retries of a subscribe the server answered `unavailable` (or did not answer), per connection. */
const MAX_SUBSCRIBE_RETRIES = 10;
/** How long an early event waits for a coalescing announcement before a replay is asked for. */
const GAP_GRACE_MS = 1_000;

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  timer: Timer | undefined;
}

type ChannelStatus =
  /** Wanted, not (yet) sent on this connection. */
  | 'pending'
  /** Our subscribe is on its way. */
  | 'subscribing'
  /** Waiting for the server to restore it from the session. */
  | 'resuming'
  | 'active';

interface ChannelEntry {
  readonly name: string;
  readonly stream: ChannelStream;
  /** The `since` the application asked for, used until the stream has a position. */
  readonly initialSince: number | undefined;
  status: ChannelStatus;
  /** Confirmed on the previous connection, so a resumed session should bring it back. */
  wasActive: boolean;
  subscribeRef: string | undefined;
  fillRef: string | undefined;
  retries: number;
  timer: Timer | undefined;
  /** Set while an early event waits for its gap to be explained before a fill is asked for. */
  gapTimer: Timer | undefined;
  readonly waiters: Set<Waiter<SubscriptionInfo>>;
}

export class SubscriptionManager implements ConnectionHooks {
  readonly #o: ResolvedOptions;
  readonly #emitter: Emitter<ClientEvents>;
  readonly #conn: () => Connection;
  readonly #channels = new Map<string, ChannelEntry>();

  /** `connection` is a getter: the connection is built with this manager as its hooks. */
  constructor(options: ResolvedOptions, emitter: Emitter<ClientEvents>, connection: () => Connection) {
    this.#o = options;
    this.#emitter = emitter;
    this.#conn = connection;
  }

  /** Channels the client is subscribed to, or will subscribe to once connected. */
  get names(): string[] {
    return [...this.#channels.keys()];
  }

  /** The seq of the last event of `channel` handed to the application. */
  lastSeq(channel: string): number | undefined {
    return this.#channels.get(channel)?.stream.lastSeq;
  }

  /**
   * What a resume sends as `positions` (v1.1): the last seq handed to the application per
   * channel, so the server replays each channel from exactly there — every event once, even
   * after the node that held the session was killed before it could record where we stood.
   */
  positions(): Record<string, number> | undefined {
    let positions: Record<string, number> | undefined;
    for (const [name, entry] of this.#channels) {
      const seq = entry.stream.lastSeq;
      if (seq !== undefined) (positions ??= {})[name] = seq;
    }
    return positions;
  }

  // ───────────────────────────── connection hooks ─────────────────────────────

  onConnected(resumed: boolean): void {
    for (const entry of this.#channels.values()) {
      if (resumed && entry.wasActive) this.#awaitResume(entry);
      else this.#sendSubscribe(entry);
    }
  }

  onDisconnected(): void {
    for (const entry of this.#channels.values()) {
      clearTimeout(entry.timer);
      clearTimeout(entry.gapTimer);
      entry.timer = entry.gapTimer = undefined;
      if (entry.status === 'active' || entry.status === 'resuming') entry.wasActive = true;
      entry.status = 'pending';
      entry.subscribeRef = undefined;
      entry.fillRef = undefined;
    }
  }

  onShutdown(err: SwitchyardError): void {
    for (const entry of this.#channels.values()) {
      clearTimeout(entry.timer);
      clearTimeout(entry.gapTimer);
      entry.timer = entry.gapTimer = undefined;
      entry.status = 'pending';
      entry.subscribeRef = undefined;
      entry.fillRef = undefined;
      for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, err);
    }
  }

  onChannelFrame(frame: EventFrame | SubscriptionResultFrame | SnapshotFrame): void {
    if (frame.type === 'event') this.#onEvent(frame);
    else if (frame.type === 'subscription_result') this.#onUnsolicitedResult(frame);
    else this.#onSnapshot(frame);
  }

  // ───────────────────────────── channels ─────────────────────────────

  subscribe(channel: string, options: SubscribeOptions = {}): Promise<SubscriptionInfo> {
    if (!isValidChannel(channel)) return Promise.reject(new InvalidArgumentError('channel', `must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /, got ${JSON.stringify(channel)}`));
    if (options.since !== undefined && (!Number.isInteger(options.since) || options.since < 0)) {
      return Promise.reject(new InvalidArgumentError('since', `must be a non-negative integer, got ${String(options.since)}`));
    }
    if (this.#conn().state.status === 'closed') return Promise.reject(new ClientClosedError(`subscribe ${channel}`));
    let entry = this.#channels.get(channel);
    if (entry === undefined) {
      entry = {
        name: channel,
        stream: new ChannelStream(channel, { since: options.since, maxBuffered: this.#o.maxBufferedEvents }),
        initialSince: options.since,
        status: 'pending',
        wasActive: false,
        subscribeRef: undefined,
        fillRef: undefined,
        retries: 0,
        timer: undefined,
        gapTimer: undefined,
        waiters: new Set(),
      };
      this.#channels.set(channel, entry);
      if (this.#conn().authenticated) this.#sendSubscribe(entry);
    } else if (entry.status === 'active') {
      return Promise.resolve({ channel, seq: entry.stream.resumeFrom ?? 0, epoch: entry.stream.epoch, recovered: undefined });
    }
    const e = entry;
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    return new Promise<SubscriptionInfo>((resolve, reject) => {
      const waiter: Waiter<SubscriptionInfo> = { resolve, reject, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.#settleWaiter(e, waiter, new TimeoutError(`subscribe ${channel}`, timeoutMs, e.status === 'pending' ? 'queued' : 'sent'));
      }, timeoutMs);
      e.waiters.add(waiter);
    });
  }

  async unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    const entry = this.#channels.get(channel);
    if (entry === undefined) return;
    this.#channels.delete(channel);
    clearTimeout(entry.timer);
    clearTimeout(entry.gapTimer);
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, new SwitchyardError('unsubscribed', `subscribe ${channel}: unsubscribed before it was confirmed`));
    const conn = this.#conn();
    if (!conn.authenticated || entry.status === 'pending') return;
    const ref = conn.requests.nextRef();
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.requests.forget(ref);
        reject(new TimeoutError(`unsubscribe ${channel}`, timeoutMs, 'sent'));
      }, timeoutMs);
      conn.requests.expect(ref, {
        kind: 'unsubscribe',
        timer,
        onReply: (frame) => (frame.type === 'error' ? reject(new ServerError(frame.code, frame.error)) : resolve()),
        // Offline, the subscription is gone with the connection; a resumed session that
        // brings it back is answered with an unsubscribe then.
        onLost: () => resolve(),
      });
      conn.write({ type: 'unsubscribe', channel, ref });
    });
  }

  #settleWaiter(entry: ChannelEntry, waiter: Waiter<SubscriptionInfo>, outcome: SubscriptionInfo | SwitchyardError): void {
    if (!entry.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  #sendSubscribe(entry: ChannelEntry): void {
    const conn = this.#conn();
    if (!conn.authenticated || this.#channels.get(entry.name) !== entry) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const since = entry.stream.resumeFrom ?? entry.initialSince;
    const ref = conn.requests.nextRef();
    entry.status = 'subscribing';
    entry.subscribeRef = ref;
    const timer = setTimeout(() => {
      if (!conn.requests.forget(ref)) return;
      if (entry.subscribeRef === ref) entry.subscribeRef = undefined;
      this.#retrySubscribe(entry, new TimeoutError(`subscribe ${entry.name}`, this.#o.requestTimeoutMs, 'sent'));
    }, this.#o.requestTimeoutMs);
    conn.requests.expect(ref, {
      kind: 'subscribe',
      timer,
      onReply: (frame) => {
        if (entry.subscribeRef === ref) entry.subscribeRef = undefined;
        if (frame.type === 'subscription_result') this.#onResult(entry, frame, since);
        else if (frame.type === 'error') this.#onSubscribeError(entry, frame.code, frame.error);
      },
      onLost: () => undefined,
    });
    const frame: ClientFrame = { type: 'subscribe', channel: entry.name, ref };
    if (since !== undefined) frame.since = since;
    conn.write(frame);
  }

  /** A resumed session restores this channel by itself; if it does not within the timeout, subscribe. */
  #awaitResume(entry: ChannelEntry): void {
    clearTimeout(entry.timer);
    entry.status = 'resuming';
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.status === 'resuming') this.#sendSubscribe(entry);
    }, this.#o.requestTimeoutMs);
  }

  #retrySubscribe(entry: ChannelEntry, cause: SwitchyardError): void {
    if (this.#channels.get(entry.name) !== entry) return;
    entry.status = 'pending';
    entry.retries++;
    if (entry.retries > MAX_SUBSCRIBE_RETRIES) {
      this.#dropChannel(entry, cause);
      return;
    }
    const o = this.#o.reconnect;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.status === 'pending') this.#sendSubscribe(entry);
    }, fullJitterDelay(entry.retries, o));
  }

  #onSubscribeError(entry: ChannelEntry, code: string, message: string): void {
    if (this.#channels.get(entry.name) !== entry || entry.status === 'active') return;
    // `bad_frame` here means the server is still setting the channel up — restoring it from
    // the resumed session. Its own subscription_result follows.
    const state = this.#conn().state;
    if (code === 'bad_frame' && state.status === 'connected' && state.resumed) {
      this.#awaitResume(entry);
      return;
    }
    if (code === 'unavailable' || code === 'rate_limited') {
      this.#retrySubscribe(entry, new ServerError(code, `subscribe ${entry.name}: ${message}`));
      return;
    }
    this.#dropChannel(entry, new ServerError(code, `subscribe ${entry.name}: ${message}`));
  }

  /** A subscription that cannot be had: forget it, tell whoever waits, or the error listeners. */
  #dropChannel(entry: ChannelEntry, error: SwitchyardError): void {
    if (this.#channels.get(entry.name) === entry) this.#channels.delete(entry.name);
    clearTimeout(entry.timer);
    clearTimeout(entry.gapTimer);
    entry.timer = undefined;
    const waiting = entry.waiters.size > 0;
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, error);
    if (!waiting) this.#emitter.emit('error', error);
  }

  #onResult(entry: ChannelEntry, frame: SubscriptionResultFrame, since: number | undefined): void {
    if (this.#channels.get(entry.name) !== entry) return;
    if (!frame.success) {
      const code = frame.error ?? 'unknown';
      if (code === 'unavailable') this.#retrySubscribe(entry, new ServerError(code, `subscribe ${entry.name}: the server could not complete it`));
      else this.#dropChannel(entry, new ServerError(code, `subscribe ${entry.name} refused: ${code}`));
      return;
    }
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.status = 'active';
    entry.wasActive = true;
    entry.retries = 0;
    const seq = typeof frame.seq === 'number' ? frame.seq : 0;
    const outcome = entry.stream.onSubscribed({ seq, epoch: frame.epoch, recovered: frame.recovered }, since);
    const info: SubscriptionInfo = { channel: entry.name, seq, epoch: frame.epoch, recovered: frame.recovered };
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, info);
    if (outcome.signal !== undefined) this.#emitter.emit('gap', outcome.signal);
    if (outcome.needFill) this.#checkCaughtUp(entry, seq);
  }

  /**
   * After a resume the server replays from where *it* thinks the client stood; the replay
   * travels right behind the subscription_result. A ping's pong comes after all of it, so
   * if the stream has still not reached `target` by then, what it missed was skipped: fill.
   */
  #checkCaughtUp(entry: ChannelEntry, target: number): void {
    const conn = this.#conn();
    if (!conn.authenticated) return;
    const ref = conn.requests.nextRef();
    const check = () => {
      if (this.#channels.get(entry.name) === entry && (entry.stream.lastSeq ?? -1) < target) this.#requestFill(entry);
    };
    const timer = setTimeout(() => {
      if (conn.requests.forget(ref)) check();
    }, this.#o.requestTimeoutMs);
    conn.requests.expect(ref, { kind: 'request', timer, onReply: check, onLost: () => undefined });
    conn.write({ type: 'ping', ref });
  }

  /** A `subscription_result` nobody asked for: a resumed session restoring a channel, or a reset notice. */
  #onUnsolicitedResult(frame: SubscriptionResultFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined) {
      // A channel the application has dropped meanwhile: the session still had it.
      if (frame.success) this.#conn().write({ type: 'unsubscribe', channel: frame.channel });
      return;
    }
    this.#onResult(entry, frame, undefined);
  }

  /** Asks for a replay from the last seq handed over: `subscribe` again with `since`. */
  #requestFill(entry: ChannelEntry): void {
    const conn = this.#conn();
    if (!conn.authenticated || entry.fillRef !== undefined || entry.status !== 'active') return;
    const since = entry.stream.resumeFrom;
    if (since === undefined) return;
    const ref = conn.requests.nextRef();
    entry.fillRef = ref;
    const timer = setTimeout(() => {
      if (conn.requests.forget(ref) && entry.fillRef === ref) entry.fillRef = undefined;
    }, this.#o.requestTimeoutMs);
    conn.requests.expect(ref, {
      kind: 'fill',
      timer,
      onReply: (frame) => {
        if (entry.fillRef === ref) entry.fillRef = undefined;
        if (frame.type === 'subscription_result') this.#onResult(entry, frame, since);
      },
      onLost: () => undefined,
    });
    this.#o.logger.debug?.('asking for a replay', { channel: entry.name, since });
    conn.write({ type: 'subscribe', channel: entry.name, since, ref });
  }

  #onSnapshot(frame: SnapshotFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined || typeof frame.seq !== 'number') return;
    const out = entry.stream.onSnapshot(frame.seq, frame.epoch);
    this.#emitter.emit('snapshot', { channel: frame.channel, seq: frame.seq, epoch: frame.epoch, data: frame.data });
    for (const e of out.deliver) {
      if (this.#channels.get(frame.channel) !== entry) return; // a listener unsubscribed
      this.#emitter.emit('event', e);
    }
    if (out.needFill) this.#fillAfterGrace(entry);
  }

  #onEvent(frame: EventFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined) return;
    const seq = typeof frame.seq === 'number' ? frame.seq : null;
    const event: ChannelEvent = {
      id: eventId(entry.stream.epoch, seq),
      channel: frame.channel,
      seq,
      event: frame.event,
      data: frame.data,
      timestamp: frame.timestamp,
      degraded: frame.degraded === true,
      coalesced: typeof frame.coalesced === 'number' && frame.coalesced > 0 ? frame.coalesced : 0,
    };
    const out = entry.stream.push(event);
    for (const e of out.deliver) {
      this.#emitter.emit('event', e);
      if (this.#channels.get(frame.channel) !== entry) return; // a listener unsubscribed
    }
    if (out.needFill) this.#fillAfterGrace(entry);
  }

  /**
   * An event came early. Within one connection the server skips seqs only when it coalesces
   * a slow client's events, and the event announcing that follows shortly: give it that long
   * before asking for a replay.
   */
  #fillAfterGrace(entry: ChannelEntry): void {
    if (entry.gapTimer !== undefined || entry.fillRef !== undefined) return;
    entry.gapTimer = setTimeout(() => {
      entry.gapTimer = undefined;
      if (this.#channels.get(entry.name) === entry && entry.stream.waiting) this.#requestFill(entry);
    }, GAP_GRACE_MS);
  }
}
