import type { Broker } from '@switchyard/broker';
import type { SessionRecord, SessionStore, WorkerRegistry } from '@switchyard/sessions';
import type { Logger } from 'pino';
import type { Admission } from './admission.js';
import type { Claims, TokenVerifier } from './auth.js';
import type { EdgeConfig } from './config.js';
import type { Connection } from './connection.js';
import type { JobAccess } from './job-access.js';
import type { EdgeMetrics } from './metrics.js';
import { canSubscribe } from './permissions.js';
import type { EdgePresence } from './presence.js';
import type { UserIndex } from './user-index.js';

export type Lifecycle = 'new' | 'starting' | 'serving' | 'draining' | 'stopped';

/**
 * What every part of one edge node shares: its settings and services, and the index of its
 * connections. EdgeNode creates it once and hands it to each part (server, client protocol,
 * auth and sessions, subscriptions, hub, messages, HTTP routes); no part owns another.
 */
export interface EdgeContext {
  readonly config: EdgeConfig;
  readonly log: Logger;
  readonly metrics: EdgeMetrics;
  readonly broker: Broker;
  readonly sessions: SessionStore;
  readonly registry: WorkerRegistry;
  /** Pending / authenticated / per-address counts (admission.ts), shared by every transport. */
  readonly admission: Admission;
  readonly verifier: TokenVerifier;
  readonly jobs: JobAccess | undefined;
  readonly presence: EdgePresence;
  readonly conns: Set<Connection>;
  readonly byId: Map<string, Connection>;
  readonly byUser: UserIndex<Connection>;
  readonly bySession: Map<string, Connection>;
  readonly startedAt: number;
  state: Lifecycle;
  /** Upgrades waiting for a JWKS key (admission counts them as pending). */
  upgrading: number;
}

/** The one read-rights rule of every entry point: the token's channels, or a job the user owns. */
export async function mayRead(ctx: Pick<EdgeContext, 'jobs'>, claims: Claims, channel: string): Promise<boolean> {
  if (canSubscribe(claims, channel)) return true;
  if (channel.startsWith('job:') && ctx.jobs !== undefined) {
    const owner = await ctx.jobs.ownerOf(channel.slice(4));
    return owner !== undefined && owner === claims.sub;
  }
  return false;
}

export function saveSession(ctx: Pick<EdgeContext, 'sessions' | 'log'>, session: SessionRecord): void {
  void ctx.sessions.save(session).catch((err: unknown) => ctx.log.warn({ err }, 'session save failed'));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** HTTP bodies may be this large even when MAX_MESSAGE_BYTES is set lower. */
export const MIN_BODY_LIMIT = 64 * 1024;
