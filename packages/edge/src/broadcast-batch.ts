import { ErrorCode, isValidChannel } from '@switchyard/protocol';
import type { Claims } from './auth.js';
import { AuthError } from './errors.js';
import { HttpError, keyMatches, type HttpReply } from './http.js';
import { canPublish } from './permissions.js';

/** Events in one batch `POST /broadcast` (Centrifugo's batch API has no fixed cap; one keeps a request bounded). */
export const MAX_BATCH_EVENTS = 1000;

export interface BatchDeps {
  apiKey: string | undefined;
  verify(token: string): Promise<Claims>;
  /** The node's publish: the seq, or null when the node published locally only (degraded). */
  publish(channel: string, event: string, dataJson: string, coalesce: string | undefined): Promise<number | null>;
  /** One unit of the user's USER_RATE_LIMIT_PER_S budget (JWT bearers only). */
  takeUserToken(userId: string): Promise<boolean>;
  counted(): void;
}

interface BatchEvent {
  channel: string;
  event: string;
  dataJson: string;
  coalesce: string | undefined;
}

/** One element of the batch answer, in the order of the request. */
export type BatchResult =
  | { channel: string; seq: number }
  | { channel: string; seq: null; degraded: true }
  | { channel: string; seq: null; error: string; code: string };

function validate(value: unknown, i: number): BatchEvent {
  const at = `events[${i}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, ErrorCode.BadFrame, `${at} must be a JSON object`);
  const body = value as Record<string, unknown>;
  const channel = body['channel'];
  if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, `${at}: "channel" must be a valid channel name`);
  const event = body['event'] ?? 'message';
  if (typeof event !== 'string' || event.length === 0 || event.length > 200) {
    throw new HttpError(400, ErrorCode.BadFrame, `${at}: "event" must be a string of 1–200 characters`);
  }
  if (!('data' in body)) throw new HttpError(400, ErrorCode.BadFrame, `${at}: "data" is required`);
  const coalesce = body['coalesce'];
  if (coalesce !== undefined && !isValidChannel(coalesce)) {
    throw new HttpError(400, ErrorCode.BadFrame, `${at}: "coalesce" must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /`);
  }
  return { channel: channel as string, event, dataJson: JSON.stringify(body['data']), coalesce: coalesce as string | undefined };
}

/**
 * `POST /broadcast` with a JSON array: every event is checked (shape, rights, the user's
 * rate budget) before any is published, so a refused batch publishes nothing; then they are
 * published one after another, in the request's order, each answered with its own seq.
 */
export async function broadcastBatch(token: string, values: readonly unknown[], deps: BatchDeps): Promise<HttpReply> {
  if (values.length === 0) throw new HttpError(400, ErrorCode.BadFrame, 'a batch must hold at least one event');
  if (values.length > MAX_BATCH_EVENTS) throw new HttpError(400, ErrorCode.BadFrame, `a batch holds at most ${MAX_BATCH_EVENTS} events`);
  const events = values.map(validate);
  if (!keyMatches(deps.apiKey, token)) {
    let claims: Claims;
    try {
      claims = await deps.verify(token);
    } catch (err) {
      throw new HttpError(401, err instanceof AuthError ? err.reason : ErrorCode.Unauthenticated, 'bad API key or token');
    }
    const forbidden = events.find((e) => !canPublish(claims, e.channel));
    if (forbidden !== undefined) throw new HttpError(403, ErrorCode.Forbidden, `no publish right on ${forbidden.channel}`);
    for (let i = 0; i < events.length; i++) {
      if (!(await deps.takeUserToken(claims.sub))) {
        throw new HttpError(429, ErrorCode.RateLimited, `the batch's ${events.length} events are more than this user's USER_RATE_LIMIT_PER_S budget has left`);
      }
    }
  }
  const results: BatchResult[] = [];
  for (const e of events) {
    try {
      const seq = await deps.publish(e.channel, e.event, e.dataJson, e.coalesce);
      results.push(seq === null ? { channel: e.channel, seq: null, degraded: true } : { channel: e.channel, seq });
      deps.counted();
    } catch (err) {
      // One event's failure is reported in its place; the ones after it still go out.
      const code = err instanceof HttpError ? err.code : 'internal';
      results.push({ channel: e.channel, seq: null, error: err instanceof Error ? err.message : String(err), code });
    }
  }
  return { status: 202, body: results };
}
