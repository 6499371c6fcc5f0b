import { ErrorCode, isValidChannel } from '@switchyard/protocol';
import { HttpError } from './http.js';

/** Events in one batch `POST /broadcast` (Centrifugo's batch API has no fixed cap; one keeps a request bounded). */
export const MAX_BATCH_EVENTS = 1000;

/** One event of `POST /broadcast`, checked; its data serialised once, never parsed again. */
export interface BroadcastEvent {
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

/**
 * Checks one event of a broadcast body, the single form or an element of a batch (`at` names
 * it in the message: `events[3]`).
 */
export function validateBroadcastEvent(value: unknown, at?: string): BroadcastEvent {
  const where = at === undefined ? '' : `${at}: `;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, ErrorCode.BadFrame, `${at ?? 'body'} must be a JSON object`);
  const body = value as Record<string, unknown>;
  const channel = body['channel'];
  if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, `${where}"channel" must be a valid channel name`);
  const event = body['event'] ?? 'message';
  if (typeof event !== 'string' || event.length === 0 || event.length > 200) {
    throw new HttpError(400, ErrorCode.BadFrame, `${where}"event" must be a string of 1–200 characters`);
  }
  if (!('data' in body)) throw new HttpError(400, ErrorCode.BadFrame, `${where}"data" is required`);
  const coalesce = body['coalesce'];
  if (coalesce !== undefined && !isValidChannel(coalesce)) {
    throw new HttpError(400, ErrorCode.BadFrame, `${where}"coalesce" must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /`);
  }
  return { channel: channel as string, event, dataJson: JSON.stringify(body['data']), coalesce: coalesce as string | undefined };
}

/** Checks a batch body: 1 to MAX_BATCH_EVENTS events, each as the single form. */
export function validateBatch(values: readonly unknown[]): BroadcastEvent[] {
  if (values.length === 0) throw new HttpError(400, ErrorCode.BadFrame, 'a batch must hold at least one event');
  if (values.length > MAX_BATCH_EVENTS) throw new HttpError(400, ErrorCode.BadFrame, `a batch holds at most ${MAX_BATCH_EVENTS} events`);
  return values.map((v, i) => validateBroadcastEvent(v, `events[${i}]`));
}

/**
 * Publishes a checked batch one event after another, in the request's order, each answered
 * with its own seq; one event's failure is reported in its place and the ones after it still
 * go out.
 */
export async function publishBatch(
  events: readonly BroadcastEvent[],
  publish: (channel: string, event: string, dataJson: string, coalesce: string | undefined) => Promise<number | null>,
  counted: () => void,
): Promise<BatchResult[]> {
  const results: BatchResult[] = [];
  for (const e of events) {
    try {
      const seq = await publish(e.channel, e.event, e.dataJson, e.coalesce);
      results.push(seq === null ? { channel: e.channel, seq: null, degraded: true } : { channel: e.channel, seq });
      counted();
    } catch (err) {
      const code = err instanceof HttpError ? err.code : 'internal';
      results.push({ channel: e.channel, seq: null, error: err instanceof Error ? err.message : String(err), code });
    }
  }
  return results;
}
