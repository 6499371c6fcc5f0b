import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TestClient,
  TEST_SECRET,
  authByFrame,
  b64url,
  connect,
  ecKeys,
  edKeys,
  expectAccepted,
  expectAuthError,
  expectRefused,
  expectServing,
  hsToken,
  rsaKeys,
  runCli,
  signToken,
  sleep,
  startEdge,
  uniqueSub,
  unsignedToken,
  validClaims,
  withTimeout,
  type EdgeProcess,
  type Frame,
  type KeyPair,
} from '../harness/index.js';

/** PROTOCOL.md §2: clock tolerance. Tokens "beyond" it are off by this plus a margin. */
const TOLERANCE_S = 30;
const BEYOND = TOLERANCE_S + 90;

/** Replaces the payload of a signed token, keeping its header and signature. */
function tamper(token: string, payload: Record<string, unknown>): string {
  const [header, , signature] = token.split('.');
  return `${header}.${b64url(payload)}.${signature}`;
}

/** Waits for auth_expired and the close after it; returns when it arrived. */
async function expectExpiry(client: TestClient, exp: number): Promise<void> {
  const frame = await client.next((f) => f.type === 'auth_expired', (exp - Date.now() / 1000) * 1000 + 5000);
  const at = Date.now();
  expect(frame).toEqual({ type: 'auth_expired' });
  // Not before the token's own exp (a little slack for the two clocks' rounding).
  expect(at).toBeGreaterThanOrEqual(exp * 1000 - 100);
  expect((await withTimeout(client.closed, 5000, 'close after auth_expired')).code).toBe(4001);
}

describe('HS256 (JWT_SECRET): both paths and every refusal', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ JWT_SECRET: TEST_SECRET });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('first-frame auth: auth_success with every field, ref echoed', async () => {
    const sub = uniqueSub();
    const client = await authByFrame(edge.url, await hsToken({ sub }), { ref: 'a1' });
    const hello = await client.next();
    expect(hello).toMatchObject({ type: 'auth_success', user_id: sub, resumed: false, ref: 'a1' });
    for (const field of ['connection_id', 'session_id', 'node_id']) {
      expect(hello[field], field).toEqual(expect.any(String));
      expect((hello[field] as string).length, field).toBeGreaterThan(0);
    }
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
  });

  it('Authorization: Bearer at upgrade: auth_success is the first frame, no auth frame needed', async () => {
    const sub = uniqueSub();
    const client = new TestClient(edge.url, { headers: { Authorization: `Bearer ${await hsToken({ sub })}` } });
    await client.opened;
    const first = await client.next();
    expect(first).toMatchObject({ type: 'auth_success', user_id: sub, resumed: false });
    expect(client.frames[0]).toBe(first);
    expect(first['connection_id']).toEqual(expect.any(String));
    expect(first['session_id']).toEqual(expect.any(String));
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
  });

  it('?token= at upgrade, on /ws and on /: auth_success is the first frame', async () => {
    for (const path of ['/ws', '/']) {
      const sub = uniqueSub();
      const client = new TestClient(`ws://127.0.0.1:${edge.port}${path}?token=${await hsToken({ sub })}`);
      await client.opened;
      const first = await client.next();
      expect(first, path).toMatchObject({ type: 'auth_success', user_id: sub });
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      client.close();
    }
  });

  it('every path accepts the same good token', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await hsToken({ sub }), sub);
  });

  it('frames sent right behind the auth frame are answered after auth_success', async () => {
    const client = new TestClient(edge.url);
    await client.opened;
    client.send({ type: 'auth', token: await hsToken({ sub: uniqueSub() }) });
    client.send({ type: 'ping', ref: 'p1' });
    const pong = await client.next((f) => f.type === 'pong');
    expect(pong).toMatchObject({ type: 'pong', ref: 'p1' });
    expect(client.frames.map((f) => f.type)).toEqual(['auth_success', 'pong']);
    client.close();
  });

  it('an upgrade without a token still needs the auth frame', async () => {
    const client = new TestClient(edge.url);
    await client.opened;
    client.send({ type: 'ping' });
    await expectAuthError(client, 'unauthenticated');
  });

  it('the 30 s clock tolerance is honoured: nbf 10 s ahead is accepted', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await hsToken({ sub, notBefore: 10 }), sub);
  });

  describe('refused tokens: auth_error + 4001 on the first frame, HTTP 401 at upgrade', () => {
    const cases: [string, string, () => Promise<string>][] = [
      ['signed with the wrong secret', 'bad_signature', () => hsToken({ secret: `${TEST_SECRET}-but-not-quite` })],
      ['alg none, empty signature', 'bad_algorithm', async () => unsignedToken(validClaims(uniqueSub()))],
      ['alg none with a valid token’s signature', 'bad_algorithm', async () => {
        const good = await hsToken({ sub: uniqueSub() });
        const [, payload, signature] = good.split('.');
        return `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`;
      }],
      ['alg "None" (case games)', 'bad_algorithm', async () => unsignedToken(validClaims(uniqueSub()), { alg: 'None' })],
      ['HS512 with the right secret (only HS256)', 'bad_algorithm', () => signToken(TEST_SECRET, { alg: 'HS512', sub: uniqueSub() })],
      ['expired beyond the tolerance', 'token_expired', () => hsToken({ sub: uniqueSub(), expiresIn: -BEYOND })],
      ['nbf in the future beyond the tolerance', 'token_not_yet_valid', () => hsToken({ sub: uniqueSub(), notBefore: BEYOND })],
      ['no sub', 'bad_claims', () => signToken(TEST_SECRET, { alg: 'HS256', sub: null })],
      ['empty sub', 'bad_claims', () => signToken(TEST_SECRET, { alg: 'HS256', sub: '' })],
      ['numeric sub', 'bad_claims', () => signToken(TEST_SECRET, { alg: 'HS256', extra: { sub: 42 } as never })],
      ['no exp', 'bad_claims', () => signToken(TEST_SECRET, { alg: 'HS256', sub: uniqueSub(), expiresIn: null })],
      ['exp not a number', 'bad_claims', () => signToken(TEST_SECRET, { alg: 'HS256', sub: uniqueSub(), extra: { exp: 'tomorrow' } as never })],
      ['permissions not an array of strings', 'bad_claims', () => hsToken({ sub: uniqueSub(), extra: { permissions: 'dashboard:read' } })],
      ['payload changed after signing', 'bad_signature', async () => tamper(await hsToken({ sub: 'mallory' }), validClaims('admin'))],
      ['not a JWT at all', 'token_malformed', async () => 'not-a-jwt'],
      ['three parts of garbage', 'token_malformed', async () => 'abc.def.ghi'],
    ];

    it.each(cases)('%s → %s', async (_name, code, make) => {
      await expectRefused(edge.url, await make(), code);
    });

    it('the node keeps serving after all of them', async () => {
      await expectServing(edge.url, await hsToken({ sub: uniqueSub() }));
    });
  });

  describe('any frame but auth first: auth_error (unauthenticated) and close 4001', () => {
    const frames: [string, (c: TestClient) => void][] = [
      ['subscribe', (c) => c.send({ type: 'subscribe', channel: 'dashboard' })],
      ['ping', (c) => c.send({ type: 'ping' })],
      ['publish', (c) => c.send({ type: 'publish', channel: 'dashboard', event: 'x', data: {} })],
      ['an unknown type', (c) => c.send({ type: 'hello' })],
      ['non-JSON text', (c) => c.send('this is not json')],
      ['a JSON array', (c) => c.send('[1,2,3]')],
      ['an object without type', (c) => c.send({ token: 'x' })],
      ['auth without a token', (c) => c.send({ type: 'auth' })],
      ['auth with an empty token', (c) => c.send({ type: 'auth', token: '' })],
      ['auth with a numeric token', (c) => c.send({ type: 'auth', token: 12 })],
      ['a binary frame', (c) => c.ws.send(Buffer.from('{"type":"auth"}'), { binary: true })],
    ];

    it.each(frames)('%s', async (_name, send) => {
      const client = new TestClient(edge.url);
      await client.opened;
      send(client);
      const frame = await expectAuthError(client, 'unauthenticated');
      expect(Object.keys(frame).sort()).toEqual(expect.arrayContaining(['code', 'error', 'type']));
    });

    it('a client connected before them is undisturbed, and new ones still authenticate', async () => {
      const bystander = await connect(edge.url, await hsToken({ sub: uniqueSub() }));
      expect(bystander.hello).toMatchObject({ type: 'auth_success' });
      const bad = new TestClient(edge.url);
      await bad.opened;
      bad.send('garbage');
      await expectAuthError(bad, 'unauthenticated');
      expect(await bystander.client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      await expectServing(edge.url, await hsToken({ sub: uniqueSub() }));
      bystander.client.close();
    });
  });

  it('the connection past MAX_CONNECTIONS_PER_USER (5) gets auth_error too_many_connections and 4009', async () => {
    const sub = uniqueSub();
    const token = await hsToken({ sub });
    const held: TestClient[] = [];
    for (let i = 0; i < 5; i++) {
      const { client, hello } = await connect(edge.url, token);
      expect(hello).toMatchObject({ type: 'auth_success' });
      held.push(client);
    }
    const sixth = await authByFrame(edge.url, token);
    await expectAuthError(sixth, 'too_many_connections', 4009);
    // At upgrade the sixth is refused the same way once the socket opens.
    const upgraded = new TestClient(edge.url, { headers: { authorization: `Bearer ${token}` } });
    await upgraded.opened;
    await expectAuthError(upgraded, 'too_many_connections', 4009);
    for (const c of held) expect(await c.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    // A slot freed by a close is free again.
    held[0]!.close();
    await withTimeout(held[0]!.closed, 5000, 'close');
    let again: Frame | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      const next = await connect(edge.url, token);
      again = next.hello;
      if (again.type === 'auth_success') {
        held[0] = next.client;
        break;
      }
      await sleep(50); // sleep-ok: back-off between bounded attempts at the asserted condition (a freed slot admits again)
    }
    expect(again).toMatchObject({ type: 'auth_success', user_id: sub });
    for (const c of held) c.close();
  });

  it('the Bearer scheme is case-insensitive; a non-Bearer Authorization falls back to ?token=', async () => {
    const sub = uniqueSub();
    const token = await hsToken({ sub });
    const lower = new TestClient(edge.url, { headers: { authorization: `bearer ${token}` } });
    await lower.opened;
    expect(await lower.next()).toMatchObject({ type: 'auth_success', user_id: sub });
    lower.close();
    const basic = new TestClient(`${edge.url}?token=${token}`, { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    await basic.opened;
    expect(await basic.next()).toMatchObject({ type: 'auth_success', user_id: sub });
    basic.close();
  });
});

describe('token expiry while connected', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => {
    await edge.stop();
  });

  /** A token whose exp is 2–3 s ahead (exp is in whole seconds), and that exp. */
  async function shortLived(sub: string, seconds = 3): Promise<{ token: string; exp: number }> {
    const exp = Math.floor(Date.now() / 1000) + seconds;
    return { token: await signToken(TEST_SECRET, { alg: 'HS256', sub, expiresIn: null, extra: { exp } }), exp };
  }

  // The waits here are on the tokens' lifetimes, so these run side by side.
  describe.concurrent('each on its own connection', () => {
    it('first-frame token: works until exp, then auth_expired and close 4001', async () => {
      const { token, exp } = await shortLived(uniqueSub());
      const { client, hello } = await connect(edge.url, token);
      expect(hello).toMatchObject({ type: 'auth_success' });
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      await expectExpiry(client, exp);
      expect(client.frames.map((f) => f.type)).toEqual(['auth_success', 'pong', 'auth_expired']);
    });

    it('upgrade (header) token: auth_expired and close 4001 at exp', async () => {
      const { token, exp } = await shortLived(uniqueSub());
      const client = new TestClient(edge.url, { headers: { authorization: `Bearer ${token}` } });
      await client.opened;
      expect(await client.next()).toMatchObject({ type: 'auth_success' });
      await expectExpiry(client, exp);
    });

    it('a fresh auth before exp keeps the connection open past the old exp, and the new exp is then enforced', async () => {
      const sub = uniqueSub();
      const first = await shortLived(sub);
      const { client, hello } = await connect(edge.url, first.token);
      expect(hello).toMatchObject({ type: 'auth_success', user_id: sub });

      const second = await shortLived(sub, 8);
      const again = await client.request({ type: 'auth', token: second.token, ref: 'refresh-1' });
      expect(again).toMatchObject({
        type: 'auth_success',
        ref: 'refresh-1',
        user_id: sub,
        connection_id: hello['connection_id'],
        session_id: hello['session_id'],
      });

      // Well past the first token's exp: still open, still answering.
      await sleep(first.exp * 1000 - Date.now() + 1200); // sleep-ok: a window past the first token's exp in which auth_expired must not come
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      expect(client.frames.some((f) => f.type === 'auth_expired')).toBe(false);

      // The refreshed token's own exp still closes it.
      await expectExpiry(client, second.exp);
    });

    it('a refresh on an upgrade-authenticated connection works the same way', async () => {
      const sub = uniqueSub();
      const first = await shortLived(sub);
      const client = new TestClient(`${edge.url}?token=${first.token}`);
      await client.opened;
      const hello = await client.next();
      expect(hello).toMatchObject({ type: 'auth_success', user_id: sub });
      const again = await client.request({ type: 'auth', token: await hsToken({ sub, expiresIn: 300 }) });
      expect(again).toMatchObject({ type: 'auth_success', connection_id: hello['connection_id'] });
      await sleep(first.exp * 1000 - Date.now() + 1200); // sleep-ok: a window past the first token's exp in which auth_expired must not come
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      expect(client.frames.some((f) => f.type === 'auth_expired')).toBe(false);
      client.close();
    });

    it('a refreshed token for a different sub is refused (forbidden); the old exp still applies', async () => {
      const sub = uniqueSub();
      const first = await shortLived(sub);
      const { client, hello } = await connect(edge.url, first.token);
      expect(hello).toMatchObject({ type: 'auth_success' });
      const reply = await client.request({ type: 'auth', token: await hsToken({ sub: uniqueSub('other'), expiresIn: 300 }), ref: 'swap' });
      expect(reply).toMatchObject({ type: 'error', code: 'forbidden', ref: 'swap' });
      // Still the same user, still connected...
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      expect(client.frames.filter((f) => f.type === 'auth_success')).toHaveLength(1);
      // ...and not extended: it expires with the first token.
      await expectExpiry(client, first.exp);
    });

    it('a refresh with a bad token: auth_error and close 4001', async () => {
      const sub = uniqueSub();
      const { client, hello } = await connect(edge.url, await hsToken({ sub }));
      expect(hello).toMatchObject({ type: 'auth_success' });
      client.send({ type: 'auth', token: await hsToken({ sub, expiresIn: -BEYOND }) });
      const frame = await client.next('auth_error');
      expect(frame).toMatchObject({ type: 'auth_error', error: expect.any(String), code: 'token_expired' });
      expect((await withTimeout(client.closed, 5000, 'close')).code).toBe(4001);
    });
  });

  it('the node keeps serving', async () => {
    await expectServing(edge.url, await hsToken({ sub: uniqueSub() }));
  });
});

describe('AUTH_TIMEOUT_MS', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ AUTH_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('no auth frame in time: auth_error (auth_timeout) then close 4001', async () => {
    const client = new TestClient(edge.url);
    await client.opened;
    await expectAuthError(client, 'auth_timeout');
  });

  it('a connection that authenticated in time is not closed by the timer', async () => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub: uniqueSub() }));
    expect(hello).toMatchObject({ type: 'auth_success' });
    await sleep(1600); // sleep-ok: a window past AUTH_TIMEOUT_MS in which the timer must not close the connection
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(client.frames.map((f) => f.type)).toEqual(['auth_success', 'pong']);
    client.close();
  });

  it('nor is one authenticated at upgrade', async () => {
    const client = new TestClient(edge.url, { headers: { authorization: `Bearer ${await hsToken({ sub: uniqueSub() })}` } });
    await client.opened;
    expect(await client.next()).toMatchObject({ type: 'auth_success' });
    await sleep(1600); // sleep-ok: a window past AUTH_TIMEOUT_MS in which the timer must not close the connection
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
  });

  it('several timed-out connections do not disturb an authenticated one', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: uniqueSub() }));
    const idle = await Promise.all([1, 2, 3].map(async () => {
      const c = new TestClient(edge.url);
      await c.opened;
      return c;
    }));
    for (const c of idle) await expectAuthError(c, 'auth_timeout');
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
    await expectServing(edge.url, await hsToken({ sub: uniqueSub() }));
  });
});

describe('JWT_ISSUER and JWT_AUDIENCE', () => {
  const ISS = 'https://issuer.switchyard.test';
  const AUD = 'switchyard-clients';
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ JWT_ISSUER: ISS, JWT_AUDIENCE: AUD });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('the right iss and aud are accepted on every path', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await hsToken({ sub, issuer: ISS, audience: AUD }), sub);
  });

  it('aud as an array holding the right audience is accepted', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(TEST_SECRET, { alg: 'HS256', sub, issuer: ISS, audience: ['other', AUD] }), sub);
  });

  it.each([
    ['wrong iss', { issuer: 'https://evil.test', audience: AUD }],
    ['missing iss', { audience: AUD }],
    ['wrong aud', { issuer: ISS, audience: 'someone-else' }],
    ['missing aud', { issuer: ISS }],
    ['neither', {}],
  ])('%s is refused (bad_claims)', async (_name, claims) => {
    await expectRefused(edge.url, await hsToken({ sub: uniqueSub(), ...claims }), 'bad_claims');
  });

  it('a refresh without the audience is refused', async () => {
    const sub = uniqueSub();
    const { client, hello } = await connect(edge.url, await hsToken({ sub, issuer: ISS, audience: AUD }));
    expect(hello).toMatchObject({ type: 'auth_success' });
    client.send({ type: 'auth', token: await hsToken({ sub, issuer: ISS }) });
    expect(await client.next('auth_error')).toMatchObject({ code: 'bad_claims' });
    expect((await withTimeout(client.closed, 5000, 'close')).code).toBe(4001);
  });

  it('the node keeps serving', async () => {
    await expectServing(edge.url, await hsToken({ sub: uniqueSub(), issuer: ISS, audience: AUD }));
  });
});

describe('JWT_PUBLIC_KEY: RSA (RS256) and algorithm confusion', () => {
  let edge: EdgeProcess;
  let rsa: KeyPair;
  let otherRsa: KeyPair;
  beforeAll(async () => {
    rsa = rsaKeys();
    otherRsa = rsaKeys();
    edge = await startEdge({ JWT_SECRET: undefined, JWT_PUBLIC_KEY: rsa.publicPem });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('a proper RS256 token is accepted on every path', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(rsa.privateKey, { alg: 'RS256', sub }), sub);
  });

  it('HS256 signed with the PEM text as the HMAC secret is refused (bad_algorithm)', async () => {
    await expectRefused(edge.url, await signToken(rsa.publicPem, { alg: 'HS256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('HS256 signed with the PEM text without its trailing newline is refused too', async () => {
    await expectRefused(edge.url, await signToken(rsa.publicPem.trim(), { alg: 'HS256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('HS256 signed with the test secret is refused (the node has no secret)', async () => {
    await expectRefused(edge.url, await hsToken({ sub: uniqueSub() }), 'bad_algorithm');
  });

  it('RS256 signed by another RSA key is refused (bad_signature)', async () => {
    await expectRefused(edge.url, await signToken(otherRsa.privateKey, { alg: 'RS256', sub: uniqueSub() }), 'bad_signature');
  });

  it('ES256 (another key type) is refused (bad_algorithm)', async () => {
    await expectRefused(edge.url, await signToken(ecKeys().privateKey, { alg: 'ES256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('alg none is refused', async () => {
    await expectRefused(edge.url, unsignedToken(validClaims(uniqueSub())), 'bad_algorithm');
  });

  it('an expired RS256 token is refused (token_expired)', async () => {
    await expectRefused(edge.url, await signToken(rsa.privateKey, { alg: 'RS256', sub: uniqueSub(), expiresIn: -BEYOND }), 'token_expired');
  });

  it('an RS256 token without exp is refused (bad_claims)', async () => {
    await expectRefused(edge.url, await signToken(rsa.privateKey, { alg: 'RS256', sub: uniqueSub(), expiresIn: null }), 'bad_claims');
  });

  it('the node keeps serving', async () => {
    await expectServing(edge.url, await signToken(rsa.privateKey, { alg: 'RS256', sub: uniqueSub() }));
  });
});

describe('JWT_PUBLIC_KEY: P-256 (ES256)', () => {
  let edge: EdgeProcess;
  let ec: KeyPair;
  beforeAll(async () => {
    ec = ecKeys();
    edge = await startEdge({ JWT_SECRET: undefined, JWT_PUBLIC_KEY: ec.publicPem });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('an ES256 token is accepted on every path', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(ec.privateKey, { alg: 'ES256', sub }), sub);
  });

  it('ES256 by another P-256 key is refused (bad_signature)', async () => {
    await expectRefused(edge.url, await signToken(ecKeys().privateKey, { alg: 'ES256', sub: uniqueSub() }), 'bad_signature');
  });

  it('HS256 signed with the PEM text is refused (bad_algorithm)', async () => {
    await expectRefused(edge.url, await signToken(ec.publicPem, { alg: 'HS256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('RS256 is refused (bad_algorithm)', async () => {
    await expectRefused(edge.url, await signToken(rsaKeys().privateKey, { alg: 'RS256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('the node keeps serving', async () => {
    await expectServing(edge.url, await signToken(ec.privateKey, { alg: 'ES256', sub: uniqueSub() }));
  });
});

describe('JWT_PUBLIC_KEY: Ed25519 (EdDSA), given as a file path', () => {
  let edge: EdgeProcess;
  let ed: KeyPair;
  beforeAll(async () => {
    ed = edKeys();
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-keys-')), 'ed25519.pub.pem');
    writeFileSync(file, ed.publicPem);
    edge = await startEdge({ JWT_SECRET: undefined, JWT_PUBLIC_KEY: file });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('an EdDSA token is accepted on every path', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(ed.privateKey, { alg: 'EdDSA', sub }), sub);
  });

  it('EdDSA by another Ed25519 key is refused (bad_signature)', async () => {
    await expectRefused(edge.url, await signToken(edKeys().privateKey, { alg: 'EdDSA', sub: uniqueSub() }), 'bad_signature');
  });

  it('HS256 signed with the PEM text is refused (bad_algorithm)', async () => {
    await expectRefused(edge.url, await signToken(ed.publicPem, { alg: 'HS256', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('the node keeps serving', async () => {
    await expectServing(edge.url, await signToken(ed.privateKey, { alg: 'EdDSA', sub: uniqueSub() }));
  });
});

describe('key configuration refused at start-up (exit 78, naming the setting)', () => {
  /** No key from the surrounding environment leaks in. */
  const BASE = { JWT_SECRET: undefined, JWT_PUBLIC_KEY: undefined, JWKS_URL: undefined, PORT: '0', HOST: '127.0.0.1' };
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  });

  function configFile(name: string, content: unknown): string {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(content));
    return file;
  }

  async function expectConfigRefused(args: string[], env: Record<string, string | undefined>, setting: string, exitCode: number | 'nonzero' = 78): Promise<void> {
    const result = await runCli(args, { ...BASE, ...env }, 20_000);
    if (exitCode === 'nonzero') expect(result.code).not.toBe(0);
    else expect(result.code, result.stderr).toBe(exitCode);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain(setting);
    expect(result.stdout).not.toContain('edge listening');
  }

  describe.concurrent('refusals', () => {
    it('JWT_SECRET shorter than 32 bytes', async () => {
      await expectConfigRefused(['edge'], { JWT_SECRET: 'short' }, 'JWT_SECRET');
    });

    it('JWT_SECRET of 31 bytes', async () => {
      await expectConfigRefused(['edge'], { JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET');
    });

    it('no key at all', async () => {
      await expectConfigRefused(['edge'], {}, 'JWT_SECRET');
    });

    it('two keys at once', async () => {
      await expectConfigRefused(['edge'], { JWT_SECRET: TEST_SECRET, JWKS_URL: 'http://127.0.0.1:1/jwks.json' }, 'JWT_SECRET');
    });

    it('JWKS_URL that is not http(s)', async () => {
      await expectConfigRefused(['edge'], { JWKS_URL: 'ftp://keys.example/jwks.json' }, 'JWKS_URL');
    });

    it('PORT=abc', async () => {
      await expectConfigRefused(['edge'], { JWT_SECRET: TEST_SECRET, PORT: 'abc' }, 'PORT');
    });

    it('AUTH_TIMEOUT_MS=soon', async () => {
      await expectConfigRefused(['edge'], { JWT_SECRET: TEST_SECRET, AUTH_TIMEOUT_MS: 'soon' }, 'AUTH_TIMEOUT_MS');
    });

    it('--config with an unknown key', async () => {
      const file = configFile('unknown.json', { JWT_SECRET: TEST_SECRET, JWT_SECRT: 'typo' });
      await expectConfigRefused(['edge', '--config', file], {}, 'JWT_SECRT');
    });

    it('--config with a short JWT_SECRET', async () => {
      const file = configFile('short.json', { JWT_SECRET: 'short' });
      await expectConfigRefused(['edge', '--config', file], {}, 'JWT_SECRET');
    });

    it('JWT_PUBLIC_KEY that is not a PEM public key', async () => {
      await expectConfigRefused(['edge'], { JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n' }, 'JWT_PUBLIC_KEY', 'nonzero');
    });
  });

  it('a JWT_SECRET of exactly 32 bytes is enough, from --config too', async () => {
    const secret = 's'.repeat(32);
    const file = configFile('ok.json', { JWT_SECRET: secret });
    const edge = await startEdge({ JWT_SECRET: undefined }, { args: ['--config', file] });
    try {
      const sub = uniqueSub();
      const client = await authByFrame(edge.url, await hsToken({ sub, secret }));
      expect(await client.next()).toMatchObject({ type: 'auth_success', user_id: sub } satisfies Partial<Frame>);
      client.close();
    } finally {
      await edge.stop();
    }
  });
});
