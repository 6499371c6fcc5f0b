/**
 * The client's public shapes, shared by the connection, the subscription manager and the
 * `SwitchyardClient` facade (which re-exports them).
 */
import type { SwitchyardError } from './errors.js';
import type { ChannelEvent, StreamGap } from './stream.js';

/** The connection's lifecycle, one typed union (listen with `client.on('state', ...)`). */
export type ConnectionState =
  /** Created with `autoConnect: false`, not started yet. */
  | { status: 'idle' }
  /** Opening a socket and authenticating. `attempt` counts consecutive failures (0 first). */
  | { status: 'connecting'; attempt: number; url: string | undefined }
  | {
      status: 'connected';
      url: string;
      connectionId: string;
      sessionId: string;
      userId: string;
      nodeId: string;
      /** The server restored the previous session's subscriptions. */
      resumed: boolean;
    }
  /**
   * Waiting `delayMs` before the next attempt, after a close with `closeCode`. `closedBy`:
   * `client` when this client gave up on the socket (connect or pong timeout, a provider that
   * threw), `server` when the server closed it or the network dropped it.
   */
  | { status: 'reconnecting'; attempt: number; delayMs: number; closeCode: number; closeReason: string; closedBy: 'client' | 'server' }
  /** Given up: a refused token, a session taken over, or `reconnect.maxAttempts` reached. `connect()` starts again. */
  | { status: 'failed'; error: SwitchyardError }
  /** Closed by `close()`. */
  | { status: 'closed' };

export type ConnectionStatus = ConnectionState['status'];

export interface DirectMessage {
  /** The sender's connection id (reply with `client.direct(from, ...)`). */
  from: string;
  userId: string;
  data: unknown;
}

export interface SubscriptionInfo {
  channel: string;
  /** The channel's latest seq when the subscription was confirmed. */
  seq: number;
  epoch: string | undefined;
  /** Present when the subscribe asked for a replay (`since`): whether it was complete. */
  recovered: boolean | undefined;
}

/**
 * A channel's state as of `seq`, sent by the server right after a subscription to a
 * `job:<id>` channel is confirmed (`data`: the job's status, as `GET /jobs/:id` gives it).
 * The channel's events that follow have seq > `seq`.
 */
export interface ChannelSnapshot {
  channel: string;
  seq: number;
  epoch: string | undefined;
  data: unknown;
}

export interface PublishResult {
  /** The event's seq; null when the server's broker was unreachable and it went to local subscribers only. */
  seq: number | null;
  degraded: boolean;
}

export interface SubscribeOptions {
  /**
   * Replay every retained event after this seq first (0: the whole retained history).
   * Only used when the channel is not already subscribed.
   */
  since?: number;
  /** @default requestTimeoutMs */
  timeoutMs?: number;
}

export interface RequestOptions {
  /** @default requestTimeoutMs */
  timeoutMs?: number;
}

/** What `client.on(...)` can listen to. */
export interface ClientEvents {
  /** Every change of the connection state. */
  state: ConnectionState;
  /** Every channel event, once, in seq order per channel. */
  event: ChannelEvent;
  /** A channel's current state (job channels), before the events that follow it. */
  snapshot: ChannelSnapshot;
  /** Events were lost, or a channel's history was reset: reload that channel's state. */
  gap: StreamGap;
  direct: DirectMessage;
  /** Failures not tied to a call: a refused token refresh, a subscription lost on reconnect, ... */
  error: SwitchyardError;
}
