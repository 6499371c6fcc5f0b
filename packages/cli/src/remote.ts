/**
 * What the client-side commands (`submit`, `watch`) share: where the cluster is (`--url`,
 * SWITCHYARD_URL) and which token to use (`--token`, SWITCHYARD_TOKEN, or one minted from
 * JWT_SECRET for `--user`).
 */
import { loadSettings, str } from '@switchyard/config';
import { edgeSettings, mintToken } from '@switchyard/edge';
import { UsageError, type CommonArgs } from './args.js';

export const DEFAULT_URL = 'http://127.0.0.1:8765';
/** Lifetime of a token minted for `--user`; the client asks for a fresh one before it ends. */
export const DEFAULT_MINTED_TTL_S = 3600;

/** The options `submit` and `watch` both take. */
export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  user: { type: 'string' },
  ttl: { type: 'string' },
} as const;

export interface Endpoints {
  /** Base HTTP URL of the first node (`http://host:port`). */
  http: string;
  /** WebSocket URL of every node given (`ws://host:port/ws`). */
  ws: string[];
}

/**
 * Reads `--url` (or SWITCHYARD_URL): one or more comma-separated `http(s)://` or `ws(s)://`
 * addresses. A bare `host:port` means http.
 */
export function endpoints(url: string | undefined, env: NodeJS.ProcessEnv): Endpoints {
  const raw = url ?? env['SWITCHYARD_URL'] ?? DEFAULT_URL;
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new UsageError('--url is empty');
  const parsed = parts.map((p) => {
    let u: URL;
    try {
      u = new URL(/^[a-z]+:\/\//i.test(p) ? p : `http://${p}`);
    } catch {
      throw new UsageError(`--url: "${p}" is not a URL (e.g. http://127.0.0.1:8765)`);
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw new UsageError(`--url: "${p}" must be http(s):// or ws(s)://`);
    const secure = u.protocol === 'https:' || u.protocol === 'wss:';
    const path = u.pathname === '/' || u.pathname === '' ? '' : u.pathname.replace(/\/ws\/?$/, '').replace(/\/$/, '');
    return { http: `${secure ? 'https' : 'http'}://${u.host}${path}`, ws: `${secure ? 'wss' : 'ws'}://${u.host}${path}/ws` };
  });
  return { http: parsed[0]!.http, ws: parsed.map((p) => p.ws) };
}

export type TokenSource = string | (() => Promise<string>);

/**
 * The token: `--token` (or SWITCHYARD_TOKEN) as given, else one minted with JWT_SECRET for
 * `--user` (or SWITCHYARD_USER) carrying `channels` — a provider, so a long watch gets a fresh
 * token before the last one expires.
 */
export function tokenSource(values: { token?: string | undefined; user?: string | undefined; ttl?: string | undefined }, common: CommonArgs, channels: string[] | undefined): TokenSource {
  const given = values.token ?? common.env['SWITCHYARD_TOKEN'];
  if (given !== undefined && given !== '') return given;
  const user = values.user ?? common.env['SWITCHYARD_USER'];
  const settings = loadSettings(
    { jwtSecret: edgeSettings.jwtSecret, jwtIssuer: edgeSettings.jwtIssuer, jwtAudience: edgeSettings.jwtAudience, user: str('SWITCHYARD_USER', undefined, 'user id for minted tokens') },
    { env: common.env, file: common.file },
  );
  if (user === undefined || user === '' || settings.jwtSecret === undefined) {
    throw new UsageError('needs a token: --token <jwt> (or SWITCHYARD_TOKEN), or JWT_SECRET with --user <id> to mint one');
  }
  const ttl = values.ttl === undefined ? DEFAULT_MINTED_TTL_S : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError('--ttl must be a positive integer (seconds)');
  const secret = settings.jwtSecret;
  return async () =>
    (
      await mintToken(secret, {
        sub: user,
        ttlS: ttl,
        ...(channels !== undefined && { channels }),
        ...(settings.jwtIssuer !== undefined && { issuer: settings.jwtIssuer }),
        ...(settings.jwtAudience !== undefined && { audience: settings.jwtAudience }),
      })
    ).token;
}

/** A command's outcome when it is not plain success: a message for stderr and an exit code. */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
