import { ErrorCode, isValidChannel } from '@switchyard/protocol';
import type { WorkerRegistry } from '@switchyard/sessions';
import { takeUserBudget } from './admission.js';
import type { Claims, TokenVerifier } from './auth.js';
import { AuthError } from './errors.js';
import { HttpError, bearer, keyMatches, parseJsonBody, type Gate, type Handler } from './http.js';
import { canPublish } from './permissions.js';

export interface BroadcastDeps {
  broadcastApiKey: string | undefined;
  userRateLimitPerS: number;
  verifier: TokenVerifier;
  registry: Pick<WorkerRegistry, 'takeUserToken'>;
  /** Publishes (or, while the broker is away, delivers locally: null). */
  publish(channel: string, event: string, dataJson: string, coalesce?: string): Promise<number | null>;
  counted(): void;
}

/**
 * `POST /broadcast` (PROTOCOL.md §6, §9). The gate runs before the body is looked at: the
 * BROADCAST_API_KEY, or a JWT whose user then spends its USER_RATE_LIMIT_PER_S budget (429
 * `{"error":"rate_limited"}` past it). A caller without either learns nothing about the body.
 */
export function broadcastRoute(deps: BroadcastDeps): { gate: Gate; handler: Handler } {
  const callers = new WeakMap<object, Claims>();
  const gate: Gate = async (info) => {
    const token = bearer(info.authorization);
    if (token === undefined) throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <BROADCAST_API_KEY or JWT> required');
    if (keyMatches(deps.broadcastApiKey, token)) return;
    let claims: Claims;
    try {
      claims = await deps.verifier.verify(token);
    } catch (err) {
      throw new HttpError(401, err instanceof AuthError ? err.reason : ErrorCode.Unauthenticated, 'bad API key or token');
    }
    if (!(await takeUserBudget(deps.registry, claims.sub, deps.userRateLimitPerS))) {
      throw new HttpError(429, ErrorCode.RateLimited, `more than USER_RATE_LIMIT_PER_S (${deps.userRateLimitPerS}) publishes, directs and broadcasts per second for this user`);
    }
    callers.set(info, claims);
  };
  const handler: Handler = async (info) => {
    const claims = callers.get(info);
    const body = parseJsonBody(info);
    const channel = body['channel'];
    if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, '"channel" must be a valid channel name');
    const event = body['event'] ?? 'message';
    if (typeof event !== 'string' || event.length === 0 || event.length > 200) {
      throw new HttpError(400, ErrorCode.BadFrame, '"event" must be a string of 1–200 characters');
    }
    if (!('data' in body)) throw new HttpError(400, ErrorCode.BadFrame, '"data" is required');
    if (claims !== undefined && !canPublish(claims, channel)) throw new HttpError(403, ErrorCode.Forbidden, `no publish right on ${channel}`);
    const coalesce = body['coalesce'];
    if (coalesce !== undefined && !isValidChannel(coalesce)) {
      throw new HttpError(400, ErrorCode.BadFrame, '"coalesce" must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /');
    }
    const seq = await deps.publish(channel, event, JSON.stringify(body['data']), coalesce);
    deps.counted();
    return { status: 202, body: seq === null ? { channel, seq: null, degraded: true } : { channel, seq } };
  };
  return { gate, handler };
}
