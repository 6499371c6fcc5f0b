import { BrokerUnavailableError } from '@switchyard/broker';
import { ErrorCode, encodeError, encodeFrame, encodeLocalEvent, type Json, type Ref } from '@switchyard/protocol';
import { takeUserBudget } from './admission.js';
import type { Connection } from './connection.js';
import type { EdgeContext } from './context.js';
import type { Hub } from './hub.js';
import { decodeNodeMessage, encodeNodeMessage, type NodeMessage } from './node-messages.js';
import { canPublish } from './permissions.js';

/** The session handover side of node-to-node messages (auth-session.ts). */
export interface Handovers {
  handOver(from: string, request: string, sessionId: string): void;
  handedOver(request: string): void;
}

export type MessageContext = Pick<EdgeContext, 'config' | 'log' | 'metrics' | 'broker' | 'registry' | 'jobs' | 'byId' | 'byUser'>;

/**
 * What clients send to others: publishes (through the broker, or this node only while it is
 * away), direct messages to a connection or a user anywhere in the cluster, job cancels,
 * and the node-to-node messages (node-messages.ts) that carry directs and handovers.
 */
export class Messages {
  readonly #deps: MessageContext;
  readonly #hub: Pick<Hub, 'publishLocal'>;
  readonly #handovers: Handovers;

  constructor(ctx: MessageContext, hub: Pick<Hub, 'publishLocal'>, handovers: Handovers) {
    this.#deps = ctx;
    this.#hub = hub;
    this.#handovers = handovers;
  }

  /** The per-user publish/direct budget, shared by every node of the cluster. */
  async #userBudget(conn: Connection, ref: Ref | undefined): Promise<boolean> {
    const { config, registry, metrics } = this.#deps;
    const ok = await takeUserBudget(registry, conn.userId, config.userRateLimitPerS);
    if (!ok && conn.open) {
      conn.send(encodeError(ErrorCode.RateLimited, `more than USER_RATE_LIMIT_PER_S (${config.userRateLimitPerS}) publishes and directs per second for this user`, ref));
      metrics.count('error', 'out');
    }
    return ok;
  }

  async publish(conn: Connection, channel: string, event: string, data: Json, ref: Ref | undefined, coalesce?: string): Promise<void> {
    const metrics = this.#deps.metrics;
    if (!canPublish(conn.claims!, channel)) {
      conn.send(encodeError(ErrorCode.Forbidden, `no publish right on ${channel}`, ref));
      metrics.count('error', 'out');
      return;
    }
    if (!(await this.#userBudget(conn, ref))) return;
    const seq = await this.publishOrLocal(channel, event, JSON.stringify(data), coalesce);
    conn.send(
      seq === null
        ? JSON.stringify({ type: 'ack', seq: null, degraded: true, ...(ref !== undefined && { ref }) })
        : encodeFrame({ type: 'ack', seq, ...(ref !== undefined && { ref }) }),
    );
    metrics.count('ack', 'out');
  }

  /**
   * Publishes through the broker; while the broker is unreachable the event still reaches
   * this node's subscribers (without a seq, marked degraded) rather than nobody. Returns
   * the seq, or null for such a local-only delivery.
   */
  async publishOrLocal(channel: string, event: string, dataJson: string, coalesce?: string): Promise<number | null> {
    try {
      return (await this.#deps.broker.publish({ channel, event, dataJson, ...(coalesce !== undefined && { coalesce }) })).seq;
    } catch (err) {
      if (!(err instanceof BrokerUnavailableError)) throw err;
      this.#deps.log.warn({ channel, err: err.message }, 'broker unreachable: delivering locally only');
      this.#hub.publishLocal(channel, encodeLocalEvent(channel, event, dataJson, Date.now()));
      return null;
    }
  }

  /**
   * Direct messages reach local targets at once and other nodes through their broker
   * inbox; the registry says which nodes hold the target. `not_found` only when no node does.
   */
  async direct(conn: Connection, to: string, data: Json, ref: Ref | undefined): Promise<void> {
    if (!(await this.#userBudget(conn, ref))) return;
    const { config, registry, broker, metrics, byId } = this.#deps;
    const frame = encodeFrame({ type: 'direct', from: conn.id, user_id: conn.userId, data });
    const me = config.workerId;
    let delivered = 0;
    let remote: string[] = [];
    let message: NodeMessage;
    if (to.startsWith('user:')) {
      const userId = to.slice(5);
      delivered = this.#deliverDirectToUser(userId, conn.id, frame);
      message = { kind: 'direct_to_user', userId, exceptConnectionId: conn.id, frame };
      remote = (await registry.nodesOfUser(userId).catch(() => [] as string[])).filter((n) => n !== me);
    } else {
      const local = byId.get(to);
      message = { kind: 'direct_to_connection', connectionId: to, frame };
      if (local !== undefined && local.state === 'ready') {
        local.send(frame);
        delivered = 1;
      } else {
        const node = await registry.locateConnection(to).catch(() => undefined);
        if (node !== undefined && node !== me) remote = [node];
      }
    }
    const payload = encodeNodeMessage(message);
    const sent = await Promise.all(remote.map((node) => broker.sendToNode(node, payload).then(() => true, () => false)));
    if (delivered === 0 && !sent.includes(true)) {
      conn.send(encodeError(ErrorCode.NotFound, `no connection for ${to}`, ref));
      metrics.count('error', 'out');
      return;
    }
    metrics.count('direct', 'out', delivered);
    conn.send(encodeFrame({ type: 'ack', ...(ref !== undefined && { ref }) }));
    metrics.count('ack', 'out');
  }

  #deliverDirectToUser(userId: string, exceptConnId: string, frame: string): number {
    let n = 0;
    for (const c of this.#deps.byUser.of(userId)) {
      if (c.id !== exceptConnId && c.state === 'ready') {
        c.send(frame);
        n++;
      }
    }
    return n;
  }

  /** A message routed here by another node (node-messages.ts); what this version does not know is ignored. */
  onNodeMessage(payload: string): void {
    const message = decodeNodeMessage(payload);
    if (message === undefined) return;
    switch (message.kind) {
      case 'direct_to_connection': {
        const target = this.#deps.byId.get(message.connectionId);
        if (target !== undefined && target.state === 'ready') {
          target.send(message.frame);
          this.#deps.metrics.count('direct', 'out');
        }
        return;
      }
      case 'direct_to_user': {
        const n = this.#deliverDirectToUser(message.userId, message.exceptConnectionId, message.frame);
        this.#deps.metrics.count('direct', 'out', n);
        return;
      }
      case 'handover_request':
        return this.#handovers.handOver(message.from, message.request, message.sessionId);
      case 'handover_done':
        return this.#handovers.handedOver(message.request);
    }
  }

  async cancel(conn: Connection, jobId: string, ref: Ref | undefined): Promise<void> {
    const jobs = this.#deps.jobs;
    const outcome = jobs?.cancel === undefined ? 'not_found' : await jobs.cancel(jobId, conn.userId);
    if (outcome === 'cancelled' || outcome === 'finished') {
      conn.send(encodeFrame({ type: 'ack', ...(ref !== undefined && { ref }) }));
    } else if (outcome === 'forbidden') {
      conn.send(encodeError(ErrorCode.Forbidden, `job ${jobId} is not yours`, ref));
    } else {
      conn.send(encodeError(ErrorCode.NotFound, `no job ${jobId}`, ref));
    }
  }
}
