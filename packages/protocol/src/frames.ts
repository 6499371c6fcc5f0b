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
  /** Extension: a stable code next to the human text. */
  code?: string;
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
export interface EventFrame {
  type: 'event';
  channel: string;
  seq: number;
  event: string;
  data: Json;
  timestamp: string;
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

export type ServerFrame =
  | AuthSuccessFrame
  | AuthErrorFrame
  | SubscriptionResultFrame
  | SnapshotFrame
  | { type: 'unsubscribed'; channel: string; reason?: 'forbidden'; ref?: Ref }
  | EventFrame
  | { type: 'direct'; from: string; user_id: string; data: Json }
  | { type: 'ack'; ref?: Ref; seq?: number }
  | { type: 'pong'; ref?: Ref }
  | ErrorFrame
  | ReconnectFrame
  | { type: 'auth_expired' };
