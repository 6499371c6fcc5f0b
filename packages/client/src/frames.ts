/**
 * The wire frames the client sends and receives (PROTOCOL.md §2–§3 plus the extensions in
 * docs/protocol.md). Kept here rather than imported from the server's packages so that the
 * client has no runtime or type dependency on server code.
 */

/** A request id chosen by the client, echoed back verbatim in the reply. */
export type Ref = string | number;

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// ───────────────────────────── client → server ─────────────────────────────

export type ClientFrame =
  | { type: 'auth'; token: string; session_id?: string; positions?: Record<string, number>; ref?: Ref }
  | { type: 'subscribe'; channel: string; since?: number; ref?: Ref }
  | { type: 'unsubscribe'; channel: string; ref?: Ref }
  | { type: 'publish'; channel: string; event: string; data: Json; ref?: Ref }
  | { type: 'direct'; to: string; data: Json; ref?: Ref }
  | { type: 'cancel'; job_id: string; ref?: Ref }
  | { type: 'ping'; ref?: Ref };

// ───────────────────────────── server → client ─────────────────────────────

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
export interface AuthExpiredFrame {
  type: 'auth_expired';
}
export interface SubscriptionResultFrame {
  type: 'subscription_result';
  channel: string;
  success: boolean;
  seq?: number;
  /** Extension: the channel's history epoch; it changes when the history was reset. */
  epoch?: string;
  recovered?: boolean;
  error?: string;
  ref?: Ref;
}
/**
 * Extension: right after `subscription_result` on a `job:<id>` channel, the job's current
 * status (`data`, as `GET /jobs/:id` gives it). It reflects every event up to `seq`; the
 * events that follow have seq > `seq` (and > the subscribe's `since`).
 */
export interface SnapshotFrame {
  type: 'snapshot';
  channel: string;
  seq: number;
  epoch?: string;
  data: Json;
}
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  channel: string;
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
export interface DirectFrame {
  type: 'direct';
  from: string;
  user_id: string;
  data: Json;
}
export interface AckFrame {
  type: 'ack';
  ref?: Ref;
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

export type ServerFrame =
  | AuthSuccessFrame
  | AuthErrorFrame
  | AuthExpiredFrame
  | SubscriptionResultFrame
  | SnapshotFrame
  | UnsubscribedFrame
  | EventFrame
  | DirectFrame
  | AckFrame
  | PongFrame
  | ErrorFrame
  | ReconnectFrame;

const SERVER_TYPES = new Set<string>([
  'auth_success',
  'auth_error',
  'auth_expired',
  'subscription_result',
  'snapshot',
  'unsubscribed',
  'event',
  'direct',
  'ack',
  'pong',
  'error',
  'reconnect',
]);

/**
 * Parses one text frame from the server. Returns undefined for anything that is not a JSON
 * object with a known `type` (a newer server may send frames this client does not know).
 */
export function parseServerFrame(text: string): ServerFrame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !SERVER_TYPES.has(type)) return undefined;
  return value as ServerFrame;
}

/** Close codes the server uses (docs/protocol.md, "Errors and close codes"). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  Abnormal: 1006,
  TooLarge: 1009,
  InternalError: 1011,
  Restart: 1012,
  AuthFailed: 4001,
  RateLimited: 4008,
  TooManyConnections: 4009,
  SlowConsumer: 4010,
  SessionTakenOver: 4011,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** PROTOCOL.md §3: 1–200 characters of `A-Z a-z 0-9 : _ - . @ /`. */
const CHANNEL_CHARS = /^[A-Za-z0-9:_\-.@/]{1,200}$/;

export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_CHARS.test(name);
}

/** The channel of a job's events: `job:<id>`. */
export function jobChannel(jobId: string): string {
  return `job:${jobId}`;
}
