/**
 * Requests that wait for a reply by `ref`: those in flight, and the bounded offline queue of
 * those not sent yet. Owned by the `Connection`, which routes replies here, loses what is in
 * flight when a socket drops and sends the queue once authenticated.
 */
import type { ClientFrame, ServerFrame } from '@switchyard/protocol';
import { ClientClosedError, ConnectionLostError, QueueFullError, ServerError, TimeoutError, type SwitchyardError } from './errors.js';
import { BoundedQueue } from './queue.js';
import type { ConnectionState } from './types.js';

export type Timer = ReturnType<typeof setTimeout>;

/** A request in flight, found by the `ref` of its reply. */
export interface Pending {
  readonly kind: 'request' | 'subscribe' | 'fill' | 'unsubscribe' | 'refresh';
  onReply(frame: ServerFrame): void;
  /** The connection dropped (no argument), or the client was closed or failed (the reason). */
  onLost(reason?: SwitchyardError): void;
  timer: Timer | undefined;
}

/** What requests need of the connection (the `Connection` itself). */
export interface RequestLink {
  readonly state: ConnectionState;
  /** Authenticated on a live socket: frames written now reach the server. */
  readonly authenticated: boolean;
  write(frame: ClientFrame): boolean;
}

interface Queued {
  readonly frame: ClientFrame;
  readonly what: string;
  readonly settle: (frame: ServerFrame) => void;
  readonly fail: (err: unknown) => void;
  /** Set once sent: the ref its reply will carry. */
  ref: string | undefined;
}

export class Requests {
  readonly #link: RequestLink;
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<string, Pending>();
  readonly #queue: BoundedQueue<Queued>;
  #refCounter = 0;

  constructor(link: RequestLink, maxQueued: number, requestTimeoutMs: number) {
    this.#link = link;
    this.#queue = new BoundedQueue(maxQueued);
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  nextRef(): string {
    this.#refCounter = (this.#refCounter + 1) % Number.MAX_SAFE_INTEGER;
    return `c${this.#refCounter}`;
  }

  /** Waits for the reply carrying `ref`. */
  expect(ref: string, pending: Pending): void {
    this.#pending.set(ref, pending);
  }

  /** Stops waiting for `ref`; false when nothing waited (answered, or lost already). */
  forget(ref: string): boolean {
    return this.#pending.delete(ref);
  }

  /** Hands a reply to whoever waits for its ref; false when nobody does. */
  reply(ref: string, frame: ServerFrame): boolean {
    const p = this.#pending.get(ref);
    if (p === undefined) return false;
    this.#pending.delete(ref);
    clearTimeout(p.timer);
    p.onReply(frame);
    return true;
  }

  /** Everything in flight is lost: the connection dropped (no reason), or it ended for good. */
  loseInFlight(reason?: SwitchyardError): void {
    for (const [ref, p] of [...this.#pending]) {
      this.#pending.delete(ref);
      clearTimeout(p.timer);
      p.onLost(reason);
    }
  }

  /** Rejects everything waiting, in flight and queued. */
  failAll(err: SwitchyardError): void {
    this.loseInFlight(err);
    for (const q of this.#queue.drain()) q.fail(err);
  }

  /** Sends what waited in the offline queue (the connection just authenticated). */
  flush(): void {
    for (const q of this.#queue.drain()) this.#sendQueued(q);
  }

  /**
   * Sends a frame and waits for the reply with its `ref`: now when connected, else from the
   * bounded offline queue once connected. Error frames reject with ServerError.
   */
  request(frame: ClientFrame, what: string, timeoutMs: number = this.#requestTimeoutMs): Promise<ServerFrame> {
    const state = this.#link.state;
    if (state.status === 'closed') return Promise.reject(new ClientClosedError(what));
    if (state.status === 'failed') return Promise.reject(new ClientClosedError(what, state.error));
    return new Promise<ServerFrame>((resolve, reject) => {
      let done = false;
      const q: Queued = {
        frame,
        what,
        ref: undefined,
        settle: (reply) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (reply.type === 'error') reject(new ServerError(reply.code, `${what}: ${reply.error}`));
          else resolve(reply);
        },
        fail: (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        if (q.ref === undefined) this.#queue.remove(q);
        else this.#pending.delete(q.ref);
        q.fail(new TimeoutError(what, timeoutMs, q.ref === undefined ? 'queued' : 'sent'));
      }, timeoutMs);
      if (this.#link.authenticated) {
        this.#sendQueued(q);
      } else if (!this.#queue.offer(q)) {
        q.fail(new QueueFullError(this.#queue.limit));
      }
    });
  }

  #sendQueued(q: Queued): void {
    const ref = this.nextRef();
    q.ref = ref;
    this.#pending.set(ref, {
      kind: 'request',
      timer: undefined,
      onReply: (frame) => q.settle(frame),
      onLost: (reason) => q.fail(reason ?? new ConnectionLostError(q.what)),
    });
    if (!this.#link.write({ ...q.frame, ref })) {
      this.#pending.delete(ref);
      q.fail(new ConnectionLostError(q.what));
    }
  }
}
