import { CloseCode, ErrorCode } from '@switchyard/protocol';
import type { ClientSocket, Connection, SocketData } from './connection.js';
import { writeReply } from './http.js';
import { StreamCursor } from './sse-cursor.js';
import type { HttpResponse } from './uws.js';

/**
 * Frames the node sends are turned into SSE messages by their first bytes, never by parsing
 * an event: the broker's preserialised frame starts with `eventPrefix` (protocol/encode.ts),
 * so channel and seq are read from its head.
 */
const EVENT_HEAD = /^\{"type":"event","channel":"([^"]+)","seq":(\d+)/;
const AUTH_SUCCESS = '{"type":"auth_success"';
const AUTH_ERROR = '{"type":"auth_error"';
const SUBSCRIPTION_RESULT = '{"type":"subscription_result"';
const SNAPSHOT = '{"type":"snapshot"';

/** What the stream needs from the rest of the SSE layer (sse.ts). */
export interface SseSocketOwner {
  headers(): readonly (readonly [string, string])[];
  join(channel: string, socket: SseSocket): void;
  leave(channel: string, socket: SseSocket): void;
  /** The node's close path; called exactly once per stream. */
  closed(socket: SseSocket, code: number): void;
}

type Phase = 'admitting' | 'streaming' | 'done';

/** How a close before the stream started is answered over HTTP. */
function refusalFor(code: number, authError: string | undefined): { status: number; error: string } {
  if (code === CloseCode.TooManyConnections) return { status: 429, error: ErrorCode.TooManyConnections };
  if (code === CloseCode.AuthFailed) return { status: 401, error: authError ?? ErrorCode.Unauthenticated };
  return { status: 503, error: code === CloseCode.Restart ? 'draining' : ErrorCode.Unavailable };
}

/**
 * One Server-Sent Events stream, seen by the node as a client socket. Frames become
 * `data:` messages (events with an `id:` cursor of every channel); joining a channel's live
 * fan-out means joining the SSE member list; `ping` writes the `: ping` comment; a close
 * before the stream started becomes an HTTP refusal. Writes past what the socket takes wait
 * in this object's own queue, whose size the node's backpressure checks read.
 */
export class SseSocket implements ClientSocket {
  readonly cursor: StreamCursor;
  /** Resolves true once the node admitted the client and the stream's headers are out. */
  readonly admitted: Promise<boolean>;
  #admit!: (ok: boolean) => void;
  #phase: Phase = 'admitting';
  #blocked = false;
  readonly #queue: (string | Buffer)[] = [];
  #queuedBytes = 0;
  #authError: string | undefined;
  readonly #live = new Set<string>();
  /** Channels subscribed without a resume point: their position comes from the node's answer. */
  readonly #fresh: Set<string>;

  constructor(
    readonly res: HttpResponse,
    readonly data: SocketData,
    readonly channels: readonly string[],
    resumed: ReadonlyMap<string, { epoch: string; seq: number }>,
    readonly owner: SseSocketOwner,
  ) {
    this.cursor = new StreamCursor(channels);
    for (const [channel, at] of resumed) this.cursor.set(channel, at.epoch, at.seq);
    this.#fresh = new Set(channels.filter((c) => !resumed.has(c)));
    this.admitted = new Promise((resolve) => (this.#admit = resolve));
    res.onWritable(() => this.#flush());
  }

  get conn(): Connection {
    return this.data.conn;
  }

  get streaming(): boolean {
    return this.#phase === 'streaming';
  }

  getUserData(): SocketData {
    return this.data;
  }

  send(frame: string): void {
    if (this.#phase === 'admitting') return this.#beforeStream(frame);
    if (this.#phase === 'done') return;
    const head = frame.startsWith('{"type":"event"') ? EVENT_HEAD.exec(frame) : null;
    if (head !== null) return this.event(head[1]!, Number(head[2]), frame);
    if (frame.startsWith(SUBSCRIPTION_RESULT) || frame.startsWith(SNAPSHOT)) return this.#positioned(frame);
    // Frames are JSON.stringify output: they never hold a raw line break, so one data: line.
    this.#write('data: ' + frame + '\n\n');
  }

  /** A live or replayed event of `channel`: its frame, under the cursor that includes it. */
  event(channel: string, seq: number, frame: string): void {
    if (this.#phase !== 'streaming') return;
    this.cursor.advance(channel, seq);
    this.#write('id: ' + this.cursor.encode() + '\ndata: ' + frame + '\n\n');
  }

  /**
   * A subscription_result or snapshot sets where the channel starts (they are small and
   * made by this node, so parsing them costs nothing that matters); its message carries the
   * cursor too, so a stream that dies before its first event still resumes without a gap.
   */
  #positioned(frame: string): void {
    const f = JSON.parse(frame) as { type: string; channel: string; success?: boolean; seq?: number; epoch?: string; recovered?: boolean };
    if (typeof f.epoch === 'string' && typeof f.seq === 'number' && f.success !== false) {
      const at = this.cursor.position(f.channel);
      if (f.type === 'snapshot') {
        // The events after the snapshot follow it: a fresh stream stands at the snapshot.
        if (this.#fresh.has(f.channel)) this.cursor.set(f.channel, f.epoch, f.seq);
      } else if (at === undefined) this.cursor.set(f.channel, f.epoch, f.seq);
      else if (at.epoch !== f.epoch) {
        // History was reset (or the resume point is from another epoch): the next event is new.
        this.cursor.set(f.channel, f.epoch, this.#live.has(f.channel) ? Math.max(0, f.seq - 1) : at.seq);
      }
    }
    const position = this.cursor.position(f.channel);
    this.#write((position === undefined ? '' : 'id: ' + this.cursor.encode() + '\n') + 'data: ' + frame + '\n\n');
  }

  #beforeStream(frame: string): void {
    if (frame.startsWith(AUTH_SUCCESS)) return this.#startStream();
    if (frame.startsWith(AUTH_ERROR)) this.#authError = (JSON.parse(frame) as { code?: string }).code;
  }

  #startStream(): void {
    this.#phase = 'streaming';
    const res = this.res;
    res.cork(() => {
      res.writeStatus('200 OK');
      for (const [k, v] of this.owner.headers()) res.writeHeader(k, v);
      res.writeHeader('Content-Type', 'text/event-stream');
      res.writeHeader('Cache-Control', 'no-store');
      // nginx buffers proxied responses unless told otherwise per response.
      res.writeHeader('X-Accel-Buffering', 'no');
      // The first bytes put the headers on the wire before the first subscription answers.
      res.write(': switchyard\n\n');
    });
    this.#admit(true);
  }

  /** A message made once for every one-channel stream at this position (SseHub.deliver). */
  sharedEvent(channel: string, seq: number, message: Buffer): void {
    if (this.#phase !== 'streaming') return;
    this.cursor.advance(channel, seq);
    this.#write(message);
  }

  #write(text: string | Buffer): void {
    if (this.#blocked) {
      this.#queue.push(text);
      this.#queuedBytes += text.length;
      return;
    }
    this.#pending = text;
    this.res.cork(this.#corkedWrite);
    this.#pending = '';
    // uWS kept the part the socket did not take; later writes wait here until onWritable.
    if (!this.#written) this.#blocked = true;
  }

  // One bound function rather than a closure per write: a delivery is one call into uWS.
  #pending: string | Buffer = '';
  #written = true;
  readonly #corkedWrite = (): void => {
    this.#written = this.res.write(this.#pending);
  };

  /** onWritable: hand uWS what waited; false while the socket still cannot take it all. */
  #flush(): boolean {
    if (this.#phase === 'done') return true;
    this.#blocked = false;
    while (this.#queue.length > 0) {
      const text = this.#queue.shift()!;
      this.#queuedBytes -= text.length;
      if (!this.res.write(text)) {
        this.#blocked = true;
        return false;
      }
    }
    return true;
  }

  cork(cb: () => void): void {
    if (this.#phase === 'streaming') this.res.cork(cb);
    else cb();
  }

  subscribe(channel: string): void {
    if (this.#phase === 'done' || this.#live.has(channel)) return;
    this.#live.add(channel);
    this.owner.join(channel, this);
  }

  unsubscribe(channel: string): void {
    if (this.#live.delete(channel)) this.owner.leave(channel, this);
  }

  /** What waits to be written: the node closes the stream past MAX_BACKPRESSURE_BYTES. */
  getBufferedAmount(): number {
    return this.#queuedBytes;
  }

  /** The node's keep-alive: the comment, and an open stream counts as a live client. */
  ping(): void {
    if (this.#phase !== 'streaming') return;
    this.data.conn.lastSeen = Date.now();
    this.#write(': ping\n\n');
  }

  end(code: number = CloseCode.Normal): void {
    const phase = this.#phase;
    if (phase === 'done') return;
    // A graceful end (drain, expiry) still delivers what waits, its last message included;
    // uWS holds it (bounded: the queue never passes MAX_BACKPRESSURE_BYTES for long).
    const waiting = code === CloseCode.SlowConsumer ? [] : this.#queue.slice();
    this.#finish();
    if (phase === 'admitting') {
      const { status, error } = refusalFor(code, this.#authError);
      this.res.cork(() => writeReply(this.res, { status, body: { error } }, this.owner.headers()));
      this.#admit(false);
    } else if (code === CloseCode.SlowConsumer) {
      // What is queued would never be read: drop the connection rather than wait on it.
      this.res.close();
    } else {
      this.res.cork(() => {
        for (const text of waiting) this.res.write(text);
        this.res.end();
      });
    }
    this.owner.closed(this, code);
  }

  close(): void {
    if (this.#phase === 'done') return;
    this.#finish();
    this.#admit(false);
    this.res.close();
    this.owner.closed(this, CloseCode.GoingAway);
  }

  /** The client went away (onAborted): `res` must not be touched again. */
  aborted(): void {
    if (this.#phase === 'done') return;
    this.#finish();
    this.#admit(false);
    this.owner.closed(this, CloseCode.GoingAway);
  }

  #finish(): void {
    this.#phase = 'done';
    for (const channel of this.#live) this.owner.leave(channel, this);
    this.#live.clear();
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }
}
