import type { Broker, BrokerEvent } from '@switchyard/broker';
import { ErrorCode, isValidChannel, jobChannel } from '@switchyard/protocol';
import type { Logger } from 'pino';
import type { Claims, TokenVerifier } from './auth.js';
import type { EdgeConfig } from './config.js';
import { Connection, type ClientSocket } from './connection.js';
import { AuthError } from './errors.js';
import { bearer, writeReply } from './http.js';
import { CursorError, channelTag, decodeCursor, epochTag, type CursorPosition } from './sse-cursor.js';
import { SseSocket } from './sse-socket.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/** PROTOCOL.md §9: one stream carries at most this many channels. */
export const MAX_SSE_CHANNELS = 16;

/**
 * What the node lends the SSE layer. An SSE stream goes through the node's own admission,
 * join (history + live seam, job snapshots), limits, drain and close: the stream is a
 * client whose socket happens to be an HTTP response.
 */
export interface SseHost {
  readonly config: EdgeConfig;
  readonly log: Logger;
  readonly broker: Broker;
  readonly verifier: TokenVerifier;
  /** The headers of every answer on /sse, CORS for `origin` included (PROTOCOL.md §9 "HTTP hygiene"). */
  headers(origin: string): readonly (readonly [string, string])[];
  /** The client's address: the peer's, or X-Forwarded-For's when the peer is a trusted proxy. */
  clientAddress(peer: string, forwardedFor: string): string;
  /** Why the node takes no new client now (draining, origin, admission), as the WebSocket upgrade says it. */
  refusal(origin: string, ip: string): { status: number; error: string } | undefined;
  mayRead(claims: Claims, channel: string): Promise<boolean>;
  /** The node's open path: counts the client and admits its user (auth_success or a refusal follow). */
  open(socket: ClientSocket): void;
  subscribe(conn: Connection, channel: string, since: number | undefined, epoch: string | undefined): Promise<void>;
  /** The node's close path. */
  closed(socket: ClientSocket, code: number): void;
}

class Refusal {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly message: string,
    readonly extra: Record<string, string> = {},
  ) {}
}

interface Request {
  query: URLSearchParams;
  authorization: string;
  lastEventId: string;
  origin: string;
  ip: string;
}

/**
 * `GET /sse`: Server-Sent Events. SSE streams cannot join uWS topics, so each channel has a
 * member list here, fed by the node's delivery path with the broker's preserialised frame.
 */
export class SseHub {
  readonly #members = new Map<string, Set<SseSocket>>();
  readonly #streams = new Set<SseSocket>();

  constructor(readonly host: SseHost) {}

  get streams(): number {
    return this.#streams.size;
  }

  register(app: TemplatedApp): void {
    app.get('/sse', (res, req) => this.#onRequest(res, req));
  }

  /**
   * One broker event to every stream on its channel; returns how many got it. Streams of just
   * this channel (the common case) at the same epoch share one message, encoded once, so a
   * delivery costs them a write and no string work.
   */
  deliver(event: BrokerEvent): number {
    const members = this.#members.get(event.channel);
    if (members === undefined) return 0;
    let head: string | undefined;
    let message: Buffer | undefined;
    for (const socket of members) {
      const own = socket.cursor.singleHead();
      if (own === undefined) {
        socket.event(event.channel, event.seq, event.frame);
        continue;
      }
      if (own !== head || message === undefined) {
        head = own;
        message = Buffer.from('id: ' + own + event.seq.toString(36) + '\ndata: ' + event.frame + '\n\n');
      }
      socket.sharedEvent(event.channel, event.seq, message);
    }
    return members.size;
  }

  /** A frame for every stream on `channel` that is not an event (a history reset's subscription_result). */
  publish(channel: string, frame: string): void {
    for (const socket of this.#members.get(channel) ?? []) socket.send(frame);
  }

  #onRequest(res: HttpResponse, req: HttpRequest): void {
    const request: Request = {
      query: new URLSearchParams(req.getQuery() ?? ''),
      authorization: req.getHeader('authorization'),
      lastEventId: req.getHeader('last-event-id'),
      origin: req.getHeader('origin'),
      ip: this.host.clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), req.getHeader('x-forwarded-for')),
    };
    const state: { aborted: boolean; socket?: SseSocket } = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
      state.socket?.aborted();
    });
    this.#open(res, request, state).catch((err: unknown) => {
      const refusal = err instanceof Refusal ? err : new Refusal(500, 'internal', 'the stream could not be opened');
      if (!(err instanceof Refusal)) this.host.log.error({ err }, 'SSE stream failed to open');
      if (state.aborted || state.socket !== undefined) return;
      const body = { error: refusal.error, message: refusal.message, ...refusal.extra };
      res.cork(() => writeReply(res, { status: refusal.status, body }, this.host.headers(request.origin)));
    });
  }

  async #open(res: HttpResponse, request: Request, state: { aborted: boolean; socket?: SseSocket }): Promise<void> {
    const host = this.host;
    const refused = host.refusal(request.origin, request.ip);
    if (refused !== undefined) throw new Refusal(refused.status, refused.error, 'the node takes no new clients now');
    const claims = await this.#authenticate(request);
    const channels = this.#channels(request.query);
    const cursorText = request.lastEventId || request.query.get('last_event_id') || '';
    let cursor: Map<string, CursorPosition> | undefined;
    try {
      cursor = cursorText === '' ? undefined : decodeCursor(cursorText);
    } catch (err) {
      if (err instanceof CursorError) throw new Refusal(400, err.code, err.message);
      throw err;
    }
    for (const channel of channels) {
      if (!(await host.mayRead(claims, channel))) throw new Refusal(403, ErrorCode.Forbidden, `no read right on ${channel}`, { channel });
    }
    const resume = cursor === undefined ? new Map<string, ResumePoint>() : await this.#resumePoints(channels, cursor);
    if (state.aborted) return;

    const conn = new Connection(request.ip, host.config.rateLimitBurst, claims);
    const resumed = new Map<string, { epoch: string; seq: number }>();
    for (const [channel, at] of resume) if (at.epoch !== undefined) resumed.set(channel, { epoch: at.epoch, seq: at.seq });
    const socket = new SseSocket(res, { conn }, channels, resumed, {
      headers: () => host.headers(request.origin),
      join: (channel, s) => this.#join(channel, s),
      leave: (channel, s) => this.#leave(channel, s),
      closed: (s, code) => {
        this.#streams.delete(s);
        host.closed(s, code);
      },
    });
    state.socket = socket;
    this.#streams.add(socket);
    host.open(socket);
    if (!(await socket.admitted)) return;
    for (const channel of channels) {
      const at = resume.get(channel);
      // A resume point from another history epoch cannot be replayed exactly: an epoch that
      // matches nothing makes the join answer recovered:false and send what it has.
      const epoch = at === undefined ? undefined : (at.epoch ?? `stale:${at.tag}`);
      host.subscribe(conn, channel, at?.seq, epoch).catch((err: unknown) => host.log.warn({ err, channel }, 'SSE subscribe failed'));
    }
  }

  async #authenticate(request: Request): Promise<Claims> {
    const token = bearer(request.authorization) ?? (request.query.get('token') || undefined);
    if (token === undefined) throw new Refusal(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <jwt> or ?token= required');
    try {
      return await this.host.verifier.verify(token);
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'token_malformed';
      throw new Refusal(401, ErrorCode.Unauthenticated, err instanceof AuthError ? err.message : 'token rejected', { reason });
    }
  }

  #channels(query: URLSearchParams): string[] {
    // A job id that makes no valid channel stays as written, to be refused as bad_channel below.
    const named = [...query.getAll('channel'), ...query.getAll('job_id').map((id) => jobChannel(id) ?? `job:${id}`)];
    const channels = [...new Set(named)];
    if (channels.length === 0) throw new Refusal(400, ErrorCode.BadChannel, 'name at least one channel: ?channel=<name> or ?job_id=<id>');
    for (const channel of channels) {
      if (!isValidChannel(channel)) throw new Refusal(400, ErrorCode.BadChannel, 'channel names are 1–200 characters of A-Z a-z 0-9 : _ - . @ /', { channel: String(channel).slice(0, 200) });
    }
    const max = Math.min(MAX_SSE_CHANNELS, this.host.config.maxSubscriptionsPerConnection);
    if (channels.length > max) throw new Refusal(400, ErrorCode.TooManySubscriptions, `at most ${max} channels per stream`);
    return channels;
  }

  /**
   * The cursor names each channel's epoch by a tag: the channel's current epoch is read to
   * tell whether the position still means the same history.
   */
  async #resumePoints(channels: readonly string[], cursor: Map<string, CursorPosition>): Promise<Map<string, ResumePoint>> {
    const out = new Map<string, ResumePoint>();
    await Promise.all(
      channels.map(async (channel) => {
        const at = cursor.get(channelTag(channel));
        if (at === undefined) return;
        const position = await this.host.broker.position(channel).catch(() => undefined);
        const epoch = position !== undefined && epochTag(position.epoch) === at.epochTag ? position.epoch : undefined;
        out.set(channel, { seq: at.seq, tag: at.epochTag, ...(epoch !== undefined && { epoch }) });
      }),
    );
    return out;
  }

  #join(channel: string, socket: SseSocket): void {
    let set = this.#members.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#members.set(channel, set);
    }
    set.add(socket);
  }

  #leave(channel: string, socket: SseSocket): void {
    const set = this.#members.get(channel);
    if (set === undefined) return;
    set.delete(socket);
    if (set.size === 0) this.#members.delete(channel);
  }
}

interface ResumePoint {
  seq: number;
  /** The channel's current epoch when the cursor's tag names it; absent when it does not. */
  epoch?: string;
  tag: string;
}

export type { ClientSocket };
