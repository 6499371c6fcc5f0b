import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Broker } from '@switchyard/broker';
import type { JobRecord } from '@switchyard/jobs';
import { ErrorCode, isValidChannel } from '@switchyard/protocol';
import type { NodeStats, WorkerRegistry } from '@switchyard/sessions';
import type { Logger } from 'pino';
import { mintToken } from '../auth.js';
import type { EdgeConfig } from '../config.js';
import { HttpError, bearer, keyMatches, route, type HttpReply, type RequestInfo } from '../http.js';
import type { TemplatedApp } from '../uws.js';
import { TOP_CHANNELS, mergeChannels, type NodeSampler } from './sampler.js';

/** The part of the node's job API the console reads. */
export interface ConsoleJobs {
  recent?(limit: number): Promise<readonly JobRecord[]>;
}

export interface ConsoleDeps {
  config: EdgeConfig;
  registry: WorkerRegistry;
  broker: Broker;
  jobs: ConsoleJobs | undefined;
  sampler: NodeSampler;
  log: Logger;
}

type Common = () => readonly (readonly [string, string])[];

const ASSETS_DIR = new URL('../../console/', import.meta.url);
/** The page and what it loads: all of it served from here, nothing from elsewhere. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  // The page runs only its own script and talks only to this node (HTTP and WebSocket).
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
};
const ADMIN_HEADERS = { 'Cache-Control': 'no-store' };
const UNAUTHORIZED: HttpReply = { status: 401, body: { error: 'unauthorized' }, headers: { ...ADMIN_HEADERS, 'WWW-Authenticate': 'Bearer' } };

const DEFAULT_JOBS = 50;
const MAX_JOBS = 500;
/** Jobs read to find dead letters among them. */
const DEAD_LETTER_SCAN = 500;
const DEFAULT_EVENTS = 50;
const MAX_EVENTS = 500;
/** The console's WebSocket token: long enough for a shift; the page mints a new one on reconnect. */
const CONSOLE_TOKEN_TTL_S = 3600;
const EVENTS_PREFIX = '/admin/channels/';
const EVENTS_SUFFIX = '/events';

/**
 * The operators' console (PROTOCOL.md §9 "Console"): the page at `/console` and the JSON it
 * reads under `/admin/*`, every piece of it behind `Authorization: Bearer <ADMIN_API_KEY>`.
 * With CONSOLE unset none of these routes exist (the node's catch-all answers 404).
 */
export function registerConsoleRoutes(app: TemplatedApp, deps: ConsoleDeps, common: Common): void {
  if (!deps.config.console) return;
  if (deps.config.adminApiKey === undefined) deps.log.warn('CONSOLE=true without ADMIN_API_KEY: the page loads, but every /admin endpoint answers 401');
  const assets = new Map<string, { body: string; type: string }>();
  for (const [path, { file, type }] of Object.entries(ASSETS)) assets.set(path, { body: readFileSync(new URL(file, ASSETS_DIR), 'utf8'), type });
  for (const [path, asset] of assets) {
    app.get(path, route(() => ({ status: 200, body: asset.body, contentType: asset.type, headers: PAGE_HEADERS }), common));
  }
  const admin = (handler: (info: RequestInfo) => Promise<HttpReply> | HttpReply) =>
    route(async (info) => (keyMatches(deps.config.adminApiKey, bearer(info.authorization)) ? withNoStore(await handler(info)) : UNAUTHORIZED), common);
  app.get('/admin/nodes', admin(() => ({ status: 200, body: { nodes: nodes(deps) } })));
  app.get('/admin/channels', admin(() => ({ status: 200, body: { channels: channels(deps) } })));
  app.get('/admin/channels/*', admin((info) => channelEvents(deps, info)));
  app.get('/admin/jobs', admin((info) => jobs(deps, info)));
  app.get('/admin/dead-letters', admin(() => deadLetters(deps)));
  app.post('/admin/token', admin(() => consoleToken(deps)));
}

function withNoStore(reply: HttpReply): HttpReply {
  return { ...reply, headers: { ...ADMIN_HEADERS, ...reply.headers } };
}

/** Every live node of the cluster with its latest report; this node's own is fresh. */
function nodes(deps: ConsoleDeps): Record<string, unknown>[] {
  const me = deps.config.workerId;
  const list = deps.registry.workers().map((w) => {
    const stats: NodeStats | undefined = w.id === me ? deps.sampler.sample() : w.stats;
    return {
      id: w.id,
      self: w.id === me,
      connections: w.connections,
      draining: w.draining,
      started_at: w.startedAt > 0 ? new Date(w.startedAt).toISOString() : null,
      ...(stats !== undefined && {
        sessions: stats.sessions,
        subscriptions: stats.subscriptions,
        channels: stats.channels,
        cpu_percent: stats.cpu_percent,
        rss_bytes: stats.rss_bytes,
        heap_used_bytes: stats.heap_used_bytes,
        sampled_at: new Date(stats.sampled_at).toISOString(),
      }),
    };
  });
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function channels(deps: ConsoleDeps) {
  const me = deps.config.workerId;
  const reports = deps.registry.workers().map((w) => (w.id === me ? deps.sampler.sample().top_channels : (w.stats?.top_channels ?? [])));
  return mergeChannels(reports, TOP_CHANNELS);
}

async function recent(deps: ConsoleDeps, limit: number): Promise<readonly JobRecord[] | undefined> {
  const list = deps.jobs?.recent;
  if (list === undefined) return undefined;
  try {
    return await list.call(deps.jobs, limit);
  } catch (err) {
    throw new HttpError(503, 'unavailable', `cannot list jobs: ${(err as Error).message}`);
  }
}

async function jobs(deps: ConsoleDeps, info: RequestInfo): Promise<HttpReply> {
  const limit = intParam(info.query, 'limit', DEFAULT_JOBS, MAX_JOBS);
  const list = await recent(deps, limit);
  return { status: 200, body: { enabled: list !== undefined, jobs: list ?? [] } };
}

/**
 * Jobs that failed for good: a permanent failure, or retries exhausted, is what goes to the
 * dead-letter topic, and its status keeps the same error, class and attempts.
 */
async function deadLetters(deps: ConsoleDeps): Promise<HttpReply> {
  const list = await recent(deps, DEAD_LETTER_SCAN);
  const letters = (list ?? [])
    .filter((j) => j.state === 'failed')
    .map((j) => ({
      job_id: j.job_id,
      error: j.error ?? null,
      class: j.class ?? null,
      attempts: j.attempts,
      ...(j.owner !== undefined && { owner: j.owner }),
      ...(j.sample_id !== undefined && { sample_id: j.sample_id }),
      failed_at: j.finished_at ?? j.updated_at ?? null,
    }));
  return { status: 200, body: { enabled: list !== undefined, dead_letters: letters } };
}

/** The latest events of one channel, from its retained history (frames passed through as they are). */
async function channelEvents(deps: ConsoleDeps, info: RequestInfo): Promise<HttpReply> {
  const rest = info.url.slice(EVENTS_PREFIX.length);
  if (!rest.endsWith(EVENTS_SUFFIX)) throw new HttpError(404, ErrorCode.NotFound, `no route for GET ${info.url}`);
  let channel: string;
  try {
    channel = decodeURIComponent(rest.slice(0, -EVENTS_SUFFIX.length));
  } catch {
    channel = '';
  }
  if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, 'the channel must be 1–200 characters of A-Z a-z 0-9 : _ - . @ / (URL-encoded)');
  const limit = intParam(info.query, 'limit', DEFAULT_EVENTS, MAX_EVENTS);
  let body: string;
  try {
    const position = await deps.broker.position(channel);
    const page = await deps.broker.history(channel, Math.max(0, position.seq - limit));
    const frames = page.events.slice(-limit).map((e) => e.frame);
    body = `{"channel":${JSON.stringify(channel)},"seq":${page.seq},"epoch":${JSON.stringify(page.epoch)},"events":[${frames.join(',')}]}`;
  } catch (err) {
    throw new HttpError(503, 'unavailable', `cannot read the channel's history: ${(err as Error).message}`);
  }
  return { status: 200, body, contentType: 'application/json' };
}

/**
 * A token for the page's own WebSocket, so it follows jobs and channels like any client:
 * read on every channel, write on none, its own user id so tabs do not share a connection budget.
 */
async function consoleToken(deps: ConsoleDeps): Promise<HttpReply> {
  const c = deps.config;
  if (c.jwtSecret === undefined) throw new HttpError(501, 'not_supported', 'the console’s live view needs JWT_SECRET; this node verifies with a public key');
  const { token, expiresAt } = await mintToken(c.jwtSecret, {
    sub: `console-${randomBytes(6).toString('base64url')}`,
    channels: ['*'],
    ttlS: CONSOLE_TOKEN_TTL_S,
    ...(c.jwtIssuer !== undefined && { issuer: c.jwtIssuer }),
    ...(c.jwtAudience !== undefined && { audience: c.jwtAudience }),
  });
  return { status: 200, body: { token, expires_at: new Date(expiresAt * 1000).toISOString() } };
}

function intParam(query: string, name: string, fallback: number, max: number): number {
  const raw = new URLSearchParams(query).get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, ErrorCode.BadFrame, `"${name}" must be an integer from 1 to ${max}`);
  return n;
}
