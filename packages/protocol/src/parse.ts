import { isValidChannel, jobChannel } from './channel.js';
import { ErrorCode } from './codes.js';
import type { ClientFrame, Json, Ref } from './frames.js';
import { MAX_JSON_DEPTH, nestedTooDeep } from './nesting.js';

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: ErrorCode; error: string; ref?: Ref; type?: string };

const MAX_REF_LENGTH = 128;
const MAX_EVENT_LENGTH = 200;
const MAX_ID_LENGTH = 200;
const MAX_TOKEN_LENGTH = 16 * 1024;
const DEFAULT_EVENT = 'message';
/** Channels one resume may name in `positions`: far above MAX_SUBSCRIPTIONS_PER_CONNECTION's default. */
const MAX_POSITIONS = 1000;

type Obj = Record<string, unknown>;

function fail(code: ErrorCode, error: string, ref?: Ref, type?: string): ParseResult {
  const result: { ok: false; code: ErrorCode; error: string; ref?: Ref; type?: string } = { ok: false, code, error };
  if (ref !== undefined) result.ref = ref;
  if (type !== undefined) result.type = type;
  return result;
}

function readRef(value: unknown): Ref | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.length <= MAX_REF_LENGTH) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return null;
}

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shortString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}

/**
 * Parses and validates one text frame from a client. Never throws: every way a frame
 * can be wrong maps to a stable error code, and the `ref` is kept whenever it could be read
 * so the client can match the error to its request.
 */
export function parseClientFrame(text: string): ParseResult {
  if (nestedTooDeep(text)) return fail(ErrorCode.BadJson, `frame is nested deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(ErrorCode.BadJson, 'frame is not valid JSON');
  }
  if (!isObject(value)) return fail(ErrorCode.BadFrame, 'frame must be a JSON object');
  return validateClientFrame(value);
}

export function validateClientFrame(value: Obj): ParseResult {
  const ref = readRef(value['ref']);
  if (ref === null) return fail(ErrorCode.BadFrame, `"ref" must be a string of at most ${MAX_REF_LENGTH} characters or a number`);
  const type = value['type'];
  if (typeof type !== 'string') return fail(ErrorCode.BadFrame, 'frame needs a string field "type"', ref);

  switch (type) {
    case 'ping':
      return ok({ type, ...(ref !== undefined && { ref }) });

    case 'auth': {
      const token = value['token'];
      if (!shortString(token, MAX_TOKEN_LENGTH)) return fail(ErrorCode.BadFrame, 'auth needs a string "token"', ref, type);
      const sessionId = value['session_id'];
      if (sessionId !== undefined && sessionId !== null && !shortString(sessionId, MAX_ID_LENGTH)) {
        return fail(ErrorCode.BadFrame, '"session_id" must be a non-empty string', ref, type);
      }
      const positions = readPositions(value['positions']);
      if (typeof positions === 'string') return fail(ErrorCode.BadFrame, positions, ref, type);
      return ok({
        type,
        token,
        ...(typeof sessionId === 'string' && { session_id: sessionId }),
        ...(positions !== undefined && { positions }),
        ...(ref !== undefined && { ref }),
      });
    }

    case 'subscribe':
    case 'unsubscribe':
    case 'presence': {
      const channel = readChannel(value);
      if (typeof channel !== 'string') return fail(channel.code, channel.error, ref, type);
      if (type !== 'subscribe') return ok({ type, channel, ...(ref !== undefined && { ref }) });
      const since = value['since'];
      if (since !== undefined && since !== null && !(Number.isSafeInteger(since) && (since as number) >= 0)) {
        return fail(ErrorCode.BadFrame, '"since" must be a non-negative integer', ref, type);
      }
      const snapshot = value['snapshot'];
      if (snapshot !== undefined && snapshot !== null && typeof snapshot !== 'boolean') return fail(ErrorCode.BadFrame, '"snapshot" must be true or false', ref, type);
      return ok({
        type,
        channel,
        ...(typeof since === 'number' && { since }),
        ...(snapshot === false && { snapshot }),
        ...(ref !== undefined && { ref }),
      });
    }

    case 'publish': {
      const channel = value['channel'];
      if (channel === undefined) return fail(ErrorCode.BadFrame, 'publish needs a "channel"', ref, type);
      if (!isValidChannel(channel)) return fail(ErrorCode.BadChannel, badChannelText(channel), ref, type);
      const event = value['event'] ?? DEFAULT_EVENT;
      if (!shortString(event, MAX_EVENT_LENGTH)) {
        return fail(ErrorCode.BadFrame, `"event" must be a string of 1–${MAX_EVENT_LENGTH} characters`, ref, type);
      }
      const coalesce = value['coalesce'];
      if (coalesce !== undefined && !isValidChannel(coalesce)) {
        return fail(ErrorCode.BadFrame, '"coalesce" must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /', ref, type);
      }
      return ok({
        type,
        channel,
        event,
        data: (value['data'] ?? null) as Json,
        ...(typeof coalesce === 'string' && { coalesce }),
        ...(ref !== undefined && { ref }),
      });
    }

    case 'direct': {
      const to = value['to'];
      if (!shortString(to, MAX_ID_LENGTH + 5)) return fail(ErrorCode.BadFrame, 'direct needs a string "to"', ref, type);
      return ok({ type, to, data: (value['data'] ?? null) as Json, ...(ref !== undefined && { ref }) });
    }

    case 'cancel': {
      const jobId = value['job_id'];
      if (!shortString(jobId, MAX_ID_LENGTH) || jobChannel(jobId) === undefined) {
        return fail(ErrorCode.BadFrame, 'cancel needs a valid string "job_id"', ref, type);
      }
      return ok({ type, job_id: jobId, ...(ref !== undefined && { ref }) });
    }

    default:
      return fail(ErrorCode.UnknownType, `unknown frame type "${type.slice(0, 40)}"`, ref, type);
  }
}

/** `auth`'s `positions` (v1.1): channel → last seq received; a string says what is wrong. */
function readPositions(value: unknown): Record<string, number> | undefined | string {
  if (value === undefined || value === null) return undefined;
  const what = '"positions" must be an object of channel → last seq received (a non-negative integer)';
  if (!isObject(value)) return what;
  const entries = Object.entries(value);
  if (entries.length > MAX_POSITIONS) return `"positions" may name at most ${MAX_POSITIONS} channels`;
  // No prototype: a channel may be called `constructor` or `__proto__`.
  const positions = Object.create(null) as Record<string, number>;
  for (const [channel, seq] of entries) {
    if (!isValidChannel(channel)) return `"positions" names an invalid channel: ${badChannelText(channel)}`;
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) return `${what}; "${channel}" has ${JSON.stringify(seq)}`;
    positions[channel] = seq as number;
  }
  return positions;
}

function ok(frame: ClientFrame): ParseResult {
  return { ok: true, frame };
}

function readChannel(value: Obj): string | { code: ErrorCode; error: string } {
  const channel = value['channel'];
  const jobId = value['job_id'];
  if (channel !== undefined && channel !== null) {
    if (!isValidChannel(channel)) return { code: ErrorCode.BadChannel, error: badChannelText(channel) };
    return channel;
  }
  if (jobId !== undefined && jobId !== null) {
    const resolved = typeof jobId === 'string' ? jobChannel(jobId) : undefined;
    if (resolved === undefined) return { code: ErrorCode.BadChannel, error: '"job_id" does not make a valid channel name' };
    return resolved;
  }
  return { code: ErrorCode.BadFrame, error: 'needs a "channel" or a "job_id"' };
}

function badChannelText(channel: unknown): string {
  if (typeof channel !== 'string') return '"channel" must be a string';
  return 'channel names are 1–200 characters of A-Z a-z 0-9 : _ - . @ /';
}
