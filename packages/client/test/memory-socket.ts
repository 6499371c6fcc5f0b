/**
 * A WebSocket in memory with a scripted Switchyard server behind it, for unit tests of the
 * client's own logic (no network). It speaks just enough of the contract: auth (tokens in
 * `refused` get auth_error + 4001), subscribe (channels in `forbidden` are refused), and
 * `emit` to push an event to every socket subscribed to a channel.
 */
import type { WebSocketCloseEvent, WebSocketConstructor, WebSocketLike, WebSocketMessageEvent } from '../src/transport.js';

type Frame = Record<string, unknown>;

export class MemoryServer {
  readonly sockets: MemorySocket[] = [];
  readonly refused = new Set<string>();
  readonly forbidden = new Set<string>();
  /** Tokens whose auth is never answered (the client's connect timeout fires). */
  readonly silent = new Set<string>();
  readonly received: Frame[] = [];
  epoch = 'e1';
  readonly #seq = new Map<string, number>();
  #connections = 0;

  /** The class to pass as the client's `WebSocket` option. */
  readonly WebSocket: WebSocketConstructor = (() => {
    const server = this;
    return class extends MemorySocket {
      constructor(url: string) {
        super(url, server);
      }
    };
  })();

  /** Sockets not closed yet. */
  get open(): number {
    return this.sockets.filter((s) => s.readyState !== 3).length;
  }

  onFrame(socket: MemorySocket, frame: Frame): void {
    this.received.push(frame);
    const ref = frame['ref'];
    switch (frame['type']) {
      case 'auth': {
        const token = String(frame['token']);
        if (this.silent.has(token)) return;
        if (this.refused.has(token)) {
          socket.serverSend({ type: 'auth_error', error: 'bad token', code: 'bad_signature' });
          socket.serverClose(4001, 'auth failed');
          return;
        }
        socket.user = token;
        const id = `c${++this.#connections}`;
        socket.serverSend({ type: 'auth_success', connection_id: id, user_id: token, session_id: `s-${id}`, node_id: 'n1', resumed: false, ...(ref !== undefined && { ref }) });
        return;
      }
      case 'subscribe': {
        const channel = String(frame['channel']);
        if (this.forbidden.has(channel)) {
          socket.serverSend({ type: 'subscription_result', channel, success: false, error: 'forbidden', ref });
          return;
        }
        socket.channels.add(channel);
        socket.serverSend({ type: 'subscription_result', channel, success: true, seq: this.#seq.get(channel) ?? 0, epoch: this.epoch, ref });
        return;
      }
      case 'unsubscribe':
        socket.channels.delete(String(frame['channel']));
        socket.serverSend({ type: 'unsubscribed', channel: frame['channel'], ref });
        return;
      case 'ping':
        socket.serverSend({ type: 'pong', ref });
        return;
      default:
        socket.serverSend({ type: 'error', code: 'bad_frame', error: 'not scripted', ref });
    }
  }

  /** Publishes an event to every open socket subscribed to `channel`. */
  emit(channel: string, event: string, data: unknown): number {
    const seq = (this.#seq.get(channel) ?? 0) + 1;
    this.#seq.set(channel, seq);
    for (const s of this.sockets) if (s.readyState === 1 && s.channels.has(channel)) s.serverSend({ type: 'event', channel, seq, event, data, timestamp: new Date(0).toISOString() });
    return seq;
  }

  /** Starts the channel's history over in a new epoch (seqs restart at 1). */
  reset(channel: string, epoch: string): void {
    this.epoch = epoch;
    this.#seq.set(channel, 0);
    for (const s of this.sockets) if (s.readyState === 1 && s.channels.has(channel)) s.serverSend({ type: 'subscription_result', channel, success: true, seq: 0, epoch });
  }
}

export class MemorySocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: WebSocketMessageEvent) => void) | null = null;
  onclose: ((event: WebSocketCloseEvent) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  user: string | undefined;
  readonly channels = new Set<string>();
  readonly #server: MemoryServer;

  constructor(
    readonly url: string,
    server: MemoryServer,
  ) {
    this.#server = server;
    server.sockets.push(this);
    queueMicrotask(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    const frame = JSON.parse(data) as Frame;
    queueMicrotask(() => {
      if (this.readyState === 1) this.#server.onFrame(this, frame);
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    queueMicrotask(() => this.#closed(code, reason));
  }

  serverSend(frame: Frame): void {
    queueMicrotask(() => {
      if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
    });
  }

  /** The server closes the connection (after what it sent before). */
  serverClose(code: number, reason: string): void {
    queueMicrotask(() => queueMicrotask(() => this.#closed(code, reason)));
  }

  #closed(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}
