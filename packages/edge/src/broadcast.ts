import { ErrorCode } from '@switchyard/protocol';
import type { WorkerRegistry } from '@switchyard/sessions';
import { takeUserBudget } from './admission.js';
import type { Claims, TokenVerifier } from './auth.js';
import { AuthError } from './errors.js';
import { publishBatch, validateBatch, validateBroadcastEvent } from './broadcast-batch.js';
import { HttpError, bearer, keyMatches, parseJsonBodyOrArray, type Gate, type Handler } from './http.js';
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
 * `POST /broadcast` (PROTOCOL.md §6, §9), one event or a batch (a JSON array). The gate runs before the body is looked at: the
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
    const body = parseJsonBodyOrArray(info);
    if (Array.isArray(body)) {
      // A batch is checked whole (shape, rights, budget) before any event goes out, so a
      // refused batch publishes nothing. The gate took one unit of the user's budget.
      const events = validateBatch(body);
      if (claims !== undefined) {
        const forbidden = events.find((e) => !canPublish(claims, e.channel));
        if (forbidden !== undefined) throw new HttpError(403, ErrorCode.Forbidden, `no publish right on ${forbidden.channel}`);
        for (let i = 1; i < events.length; i++) {
          if (!(await takeUserBudget(deps.registry, claims.sub, deps.userRateLimitPerS))) {
            throw new HttpError(429, ErrorCode.RateLimited, `the batch's ${events.length} events are more than this user's USER_RATE_LIMIT_PER_S budget has left`);
          }
        }
      }
      return { status: 202, body: await publishBatch(events, deps.publish, deps.counted) };
    }
    const e = validateBroadcastEvent(body);
    if (claims !== undefined && !canPublish(claims, e.channel)) throw new HttpError(403, ErrorCode.Forbidden, `no publish right on ${e.channel}`);
    const seq = await deps.publish(e.channel, e.event, e.dataJson, e.coalesce);
    deps.counted();
    return { status: 202, body: seq === null ? { channel: e.channel, seq: null, degraded: true } : { channel: e.channel, seq } };
  };
  return { gate, handler };
}
