import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { request, createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, type JWK, type JWTPayload } from 'jose';
import { expect } from 'vitest';
import { TestClient, UpgradeRefused, type Frame } from './client.js';
import { TEST_SECRET } from './edge.js';

/** An asymmetric key pair, with the public half as PEM text (what JWT_PUBLIC_KEY takes). */
export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly publicPem: string;
}

function pair(kp: { publicKey: KeyObject; privateKey: KeyObject }): KeyPair {
  return { ...kp, publicPem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function rsaKeys(): KeyPair {
  return pair(generateKeyPairSync('rsa', { modulusLength: 2048 }));
}

/** P-256, for ES256. */
export function ecKeys(): KeyPair {
  return pair(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
}

/** Ed25519, for EdDSA. */
export function edKeys(): KeyPair {
  return pair(generateKeyPairSync('ed25519'));
}

export interface SignOptions {
  /** JWS algorithm: HS256, RS256, ES256, EdDSA, ... */
  alg: string;
  kid?: string;
  /** `null` leaves `sub` out. Default: "alice". */
  sub?: string | null;
  /** Seconds from now; `null` leaves `exp` out. Default 300. */
  expiresIn?: number | null;
  /** Seconds from now. */
  notBefore?: number;
  issuer?: string;
  audience?: string | string[];
  /** Further claims, merged last (they win over the ones above). */
  extra?: JWTPayload;
}

/**
 * Signs a token with any key and algorithm: a KeyObject (asymmetric), or a secret (string or
 * bytes) for the HS family — default the test secret.
 */
export async function signToken(key: KeyObject | Uint8Array | string | undefined, options: SignOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: JWTPayload = { iat: now };
  if (options.sub !== null) claims.sub = options.sub ?? 'alice';
  if (options.expiresIn !== null) claims.exp = now + (options.expiresIn ?? 300);
  if (options.notBefore !== undefined) claims.nbf = now + options.notBefore;
  if (options.issuer !== undefined) claims.iss = options.issuer;
  if (options.audience !== undefined) claims.aud = options.audience;
  Object.assign(claims, options.extra);
  const header = { alg: options.alg, typ: 'JWT', ...(options.kid !== undefined && { kid: options.kid }) };
  const signingKey = key === undefined ? TEST_SECRET : key;
  return new SignJWT(claims)
    .setProtectedHeader(header)
    .sign(typeof signingKey === 'string' ? new TextEncoder().encode(signingKey) : signingKey);
}

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** An unsecured JWT (`alg: none`, empty signature), built by hand since jose will not make one. */
export function unsignedToken(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'JWT' }): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

/** Claims that would be accepted if only the signature were right. */
export function validClaims(sub = 'alice', expiresIn = 300): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { sub, iat: now, exp: now + expiresIn };
}

/** The public JWK of a pair, with `kid` and `alg`, as a key set serves it. */
export async function publicJwk(keys: KeyPair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(keys.publicKey)), kid, alg, use: 'sig' };
}

/** A local JWKS endpoint whose keys, status and delay tests change at will; it counts fetches. */
export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  readonly url: string;
  /** GETs of the key set so far. */
  readonly fetches: number;
  /** Of those, the ones whose answer has been written out (a delayed answer counts once sent). */
  readonly answered: number;
  setKeys(keys: JWK[]): void;
  /** HTTP status to answer with (200 serves the keys). */
  setStatus(status: number): void;
  /** Milliseconds to hold each answer. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  let current = keys;
  let status = 200;
  let delay = 0;
  let fetches = 0;
  let answered = 0;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    const body = status === 200 ? JSON.stringify({ keys: current }) : JSON.stringify({ error: 'unavailable' });
    const answer = () => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body, () => answered++);
    };
    if (delay > 0) setTimeout(answer, delay); // sleep-ok: the slow key set a test asked for
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get fetches() {
      return fetches;
    },
    get answered() {
      return answered;
    },
    setKeys: (k) => {
      current = k;
    },
    setStatus: (s) => {
      status = s;
    },
    setDelay: (ms) => {
      delay = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A raw WebSocket upgrade request, to see how the server answers it: 101 (upgraded; the socket
 * is dropped at once) or the refusal's status with its JSON body.
 */
export function rawUpgrade(wsUrl: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: IncomingHttpHeaders }> {
  const url = new URL(wsUrl.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
      timeout: 5000,
    });
    req.on('timeout', () => req.destroy(new Error('upgrade request timed out')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: undefined, headers: res.headers });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// ───────────────────────────── auth assertions ─────────────────────────────
// Shared by the auth and JWKS suites: each checks one path the protocol (§2) names.

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A user id no other test uses (MAX_CONNECTIONS_PER_USER is per `sub`). */
export function uniqueSub(prefix = 'user'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Opens a connection with no token and sends the first-frame `auth`. */
export async function authByFrame(url: string, token: string, extra: Record<string, unknown> = {}): Promise<TestClient> {
  const client = new TestClient(url);
  await client.opened;
  client.send({ type: 'auth', token, ...extra });
  return client;
}

/**
 * The connection got `auth_error` with `code` as its only frame, then was closed with
 * `closeCode` (4001 unless the protocol says otherwise).
 */
export async function expectAuthError(client: TestClient, code: string, closeCode = 4001): Promise<Frame> {
  const frame = await client.next((f) => f.type === 'auth_error' || f.type === 'auth_success');
  expect(frame).toMatchObject({ type: 'auth_error', error: expect.any(String), code });
  expect((frame['error'] as string).length).toBeGreaterThan(0);
  const closed = await withTimeout(client.closed, 5000, 'close after auth_error');
  // docs/protocol.md: the close after an auth_error carries its code as the reason.
  expect(closed).toEqual({ code: closeCode, reason: code });
  expect(client.frames.map((f) => f.type)).toEqual(['auth_error']);
  return frame;
}

/** A token refused at upgrade: HTTP 401, no 101, and the body names `code`. */
export async function expectUpgradeRefused(url: string, token: string, code: string | undefined, via: 'header' | 'query'): Promise<void> {
  const target = via === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
  const headers: Record<string, string> = via === 'header' ? { authorization: `Bearer ${token}` } : {};
  const raw = await rawUpgrade(target, headers);
  expect(raw.status).toBe(401);
  if (code !== undefined) expect(raw.body).toMatchObject({ code });
  // PROTOCOL.md §6: every HTTP response, this refusal included, carries the worker headers.
  expect(raw.headers['x-websocket-worker-id']).toEqual(expect.any(String));
  expect(raw.headers['x-websocket-local-connections']).toMatch(/^\d+$/);
  // The same through a real WebSocket client: the upgrade never opens.
  const client = new TestClient(target, { headers });
  const err = await client.opened.then(
    () => undefined,
    (e: unknown) => e,
  );
  try {
    client.ws.terminate();
  } catch {
    /* already gone */
  }
  expect(err).toBeInstanceOf(UpgradeRefused);
  expect((err as UpgradeRefused).status).toBe(401);
  expect(client.frames).toEqual([]);
}

/**
 * A token refused on every path: first frame (`auth_error` `code`, close 4001), and at upgrade
 * by header and by query (HTTP 401). `code` undefined: any code.
 */
export async function expectRefused(url: string, token: string, code: string | undefined): Promise<void> {
  const client = await authByFrame(url, token);
  const frame = await client.next((f) => f.type === 'auth_error' || f.type === 'auth_success');
  expect(frame).toMatchObject({ type: 'auth_error', error: expect.any(String), ...(code !== undefined && { code }) });
  const closed = await withTimeout(client.closed, 5000, 'close after auth_error');
  expect(closed.code).toBe(4001);
  expect(closed.reason).toBe(frame['code']);
  expect(client.frames.map((f) => f.type)).toEqual(['auth_error']);
  await expectUpgradeRefused(url, token, code, 'header');
  await expectUpgradeRefused(url, token, code, 'query');
}

/** Checks one authenticated connection answers a ping, then closes it and waits for the close. */
async function pingAndClose(client: TestClient): Promise<void> {
  expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
  client.close();
  await withTimeout(client.closed, 5000, 'client close');
}

/** A token accepted on every path, `auth_success` for `sub` first each time; each connection is closed again. */
export async function expectAccepted(url: string, token: string, sub: string): Promise<void> {
  const byFrame = await authByFrame(url, token);
  const hello = await byFrame.next((f) => f.type === 'auth_success' || f.type === 'auth_error');
  expect(hello).toMatchObject({ type: 'auth_success', user_id: sub, resumed: false });
  await pingAndClose(byFrame);

  for (const via of ['header', 'query'] as const) {
    const target = via === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
    const client = new TestClient(target, via === 'header' ? { headers: { authorization: `Bearer ${token}` } } : {});
    await client.opened;
    const first = await client.next();
    expect(first, `auth_success first (${via})`).toMatchObject({ type: 'auth_success', user_id: sub, resumed: false });
    expect(client.frames[0]).toBe(first);
    await pingAndClose(client);
  }
}

/** The node still serves: a fresh connection authenticates with `token` and gets a pong. */
export async function expectServing(url: string, token: string): Promise<void> {
  const client = await authByFrame(url, token);
  expect(await client.next()).toMatchObject({ type: 'auth_success' });
  await pingAndClose(client);
}
