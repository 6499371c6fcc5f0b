/** Frame shapes of PROTOCOL.md §2–§3, plus the extensions documented in docs/protocol.md. */

/** A request id chosen by the client, echoed back verbatim in the reply. */
export type Ref = string | number;

/** Any JSON value, as parsed. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface AuthFrame {
  type: 'auth';
  token: string;
  session_id?: string;
  /**
   * v1.1: channel → the last seq the client received. On a resume, each named channel of the
   * session replays from right after it instead of from the position the server recorded.
   */
  positions?: Record<string, number>;
  ref?: Ref;
}
export interface SubscribeFrame {
  type: 'subscribe';
  /** Already resolved: `job_id` arrives here as `job:<id>`. */
  channel: string;
  since?: number;
  /**
   * Extension: `false` asks a `job:<id>` subscription for the contract's plain replay — no
   * `snapshot` frame, and with `since` every retained event after it. (Set only when false.)
   */
  snapshot?: false;
  ref?: Ref;
}
export interface UnsubscribeFrame {
  type: 'unsubscribe';
  channel: string;
  ref?: Ref;
}
export interface PublishFrame {
  type: 'publish';
  channel: string;
  event: string;
  data: Json;
  /** Extension (coalescing key), carried through untouched for now. */
  coalesce?: string;
  ref?: Ref;
}
export interface DirectFrame {
  type: 'direct';
  to: string;
  data: Json;
  ref?: Ref;
}
export interface PingFrame {
  type: 'ping';
  ref?: Ref;
}
export interface CancelFrame {
  type: 'cancel';
  job_id: string;
  ref?: Ref;
}

/** v1.1: who is in a presence channel (PRESENCE_CHANNELS); answered `presence_result`. */
export interface PresenceFrame {
  type: 'presence';
  channel: string;
  ref?: Ref;
}

export type ClientFrame =
  | PresenceFrame
  | AuthFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | PublishFrame
  | DirectFrame
  | PingFrame
  | CancelFrame;

export type ClientFrameType = ClientFrame['type'];

export interface AuthSuccessFrame {
  type: 'auth_success';
  connection_id: string;
  user_id: string;
  session_id: string;
  node_id: string;
  resumed: boolean;
  ref?: Ref;
}
export interface AuthErrorFrame {
  type: 'auth_error';
  error: string;
  /** Extension: a stable reason (`token_expired`, `bad_signature`, `too_many_connections`, ...). */
  code?: string;
}
/** The token ran out while connected; the server closes 4001 unless a fresh `auth` comes first. */
export interface AuthExpiredFrame {
  type: 'auth_expired';
}
export interface SubscriptionResultFrame {
  type: 'subscription_result';
  channel: string;
  success: boolean;
  seq?: number;
  recovered?: boolean;
  /** Extension: the history epoch, which changes when a channel's history was reset. */
  epoch?: string;
  error?: string;
  ref?: Ref;
}
/**
 * Extension: the current state of the thing a channel is about (a job's status, from its
 * status hash), sent right after `subscription_result` on a `job:<id>` channel. It reflects
 * every event up to `seq`; the events that follow it have seq > `seq`.
 */
export interface SnapshotFrame {
  type: 'snapshot';
  channel: string;
  seq: number;
  epoch: string;
  data: Json;
}
/** The subscription ended: the client asked, or (v1.1) a refreshed token no longer allows it. */
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  channel: string;
  reason?: 'forbidden';
  ref?: Ref;
}
export interface EventFrame {
  type: 'event';
  channel: string;
  /** Absent on an event delivered while the server's broker was unreachable (`degraded`). */
  seq?: number;
  event: string;
  data: Json;
  timestamp: string;
  /** Extension: delivered on one node only, outside the channel's seq and history. */
  degraded?: boolean;
  /** Extension: the event's coalescing key (a publish with `coalesce`). */
  coalesce?: string;
  /** Extension: how many earlier events of its key this one replaces (sent to a client that fell behind). */
  coalesced?: number;
}
/** A `direct` message as its recipient gets it (the sender's frame is `DirectFrame`). */
export interface ServerDirectFrame {
  type: 'direct';
  from: string;
  user_id: string;
  data: Json;
}
export interface AckFrame {
  type: 'ack';
  ref?: Ref;
  /** `null` (with `degraded`) when the broker was unreachable and the event has no seq. */
  seq?: number | null;
  degraded?: boolean;
}
export interface PongFrame {
  type: 'pong';
  ref?: Ref;
}
export interface ErrorFrame {
  type: 'error';
  code: string;
  error: string;
  ref?: Ref;
}
export interface ReconnectFrame {
  type: 'reconnect';
  reason: string;
  after_ms: number;
}
/** v1.1: one user present in a channel; `info` is the token's `info` claim when it has one. */
export interface PresenceUser {
  user_id: string;
  connections: number;
  info?: Json;
}
/** v1.1: the answer to `presence`. `count` is users, `connections` is connections. */
export interface PresenceResultFrame {
  type: 'presence_result';
  channel: string;
  count: number;
  connections: number;
  users: PresenceUser[];
  /** More users exist than PRESENCE_MAX_USERS allows in `users`. */
  truncated: boolean;
  ref?: Ref;
}
/** v1.1: a user's first subscription to a presence channel started (no seq, never replayed). */
export interface JoinFrame {
  type: 'join';
  channel: string;
  user_id: string;
  info?: Json;
}
/** v1.1: a user's last subscription to a presence channel ended (no seq, never replayed). */
export interface LeaveFrame {
  type: 'leave';
  channel: string;
  user_id: string;
}

export type ServerFrame =
  | AuthSuccessFrame
  | AuthErrorFrame
  | AuthExpiredFrame
  | SubscriptionResultFrame
  | SnapshotFrame
  | UnsubscribedFrame
  | EventFrame
  | ServerDirectFrame
  | AckFrame
  | PongFrame
  | ErrorFrame
  | ReconnectFrame
  | PresenceResultFrame
  | JoinFrame
  | LeaveFrame;

export type ServerFrameType = ServerFrame['type'];
