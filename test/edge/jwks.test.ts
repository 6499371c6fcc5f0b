import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_SECRET,
  TestClient,
  authByFrame,
  ecKeys,
  edKeys,
  expectAccepted,
  expectAuthError,
  expectRefused,
  expectServing,
  publicJwk,
  rsaKeys,
  signToken,
  sleep,
  startEdge,
  startJwksServer,
  uniqueSub,
  unsignedToken,
  validClaims,
  withTimeout,
  type EdgeProcess,
  type JwksServer,
  type KeyPair,
} from '../harness/index.js';

describe('JWKS_URL: key set fetched, cached, refetched on an unknown kid (JWKS_COOLDOWN_MS=0)', () => {
  let jwks: JwksServer;
  let edge: EdgeProcess;
  let k1: KeyPair;
  let k2: KeyPair;
  let k3: KeyPair;
  let foreign: KeyPair;

  const rs = (key: KeyPair, kid: string | undefined, sub = uniqueSub(), more: Partial<Parameters<typeof signToken>[1]> = {}) =>
    signToken(key.privateKey, { alg: 'RS256', sub, ...(kid !== undefined && { kid }), ...more });

  beforeAll(async () => {
    k1 = rsaKeys();
    k2 = rsaKeys();
    k3 = ecKeys();
    foreign = rsaKeys();
    jwks = await startJwksServer([await publicJwk(k1, 'kid1', 'RS256')]);
    edge = await startEdge({ JWT_SECRET: undefined, JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '0' });
  });
  afterAll(async () => {
    await edge.stop();
    await jwks.close();
  });

  // These run in order: the key set changes between them.

  it('a token signed with kid1 is accepted; the set has been fetched once', async () => {
    const sub = uniqueSub();
    const { client, hello } = await (async () => {
      const c = await authByFrame(edge.url, await rs(k1, 'kid1', sub));
      return { client: c, hello: await c.next() };
    })();
    expect(hello).toMatchObject({ type: 'auth_success', user_id: sub });
    expect(jwks.fetches).toBe(1);
    client.close();
  });

  it('more kid1 tokens, on every path, come from the cache: no refetch', async () => {
    const before = jwks.fetches;
    for (let i = 0; i < 3; i++) {
      const sub = uniqueSub();
      await expectAccepted(edge.url, await rs(k1, 'kid1', sub), sub);
    }
    expect(jwks.fetches).toBe(before);
  });

  it('a kid the server does not have: refetched, then refused (unknown_key)', async () => {
    const before = jwks.fetches;
    await expectRefused(edge.url, await rs(foreign, 'kid-nobody-has'), 'unknown_key');
    expect(jwks.fetches).toBeGreaterThan(before);
  });

  it('a token claiming kid1 but signed by a key not in the set is refused (bad_signature), without a refetch', async () => {
    const before = jwks.fetches;
    await expectRefused(edge.url, await rs(foreign, 'kid1'), 'bad_signature');
    expect(jwks.fetches).toBe(before);
  });

  it('a token with no kid, signed by a key not in the set, is refused', async () => {
    await expectRefused(edge.url, await rs(foreign, undefined), undefined);
  });

  it('HS256 is refused under JWKS (bad_algorithm): with the test secret, and with the kid1 PEM as secret', async () => {
    await expectRefused(edge.url, await signToken(TEST_SECRET, { alg: 'HS256', kid: 'kid1', sub: uniqueSub() }), 'bad_algorithm');
    await expectRefused(edge.url, await signToken(k1.publicPem, { alg: 'HS256', kid: 'kid1', sub: uniqueSub() }), 'bad_algorithm');
  });

  it('alg none is refused under JWKS', async () => {
    await expectRefused(edge.url, unsignedToken(validClaims(uniqueSub()), { alg: 'none', kid: 'kid1' }), 'bad_algorithm');
  });

  it('claims are still checked: an expired kid1 token is refused (token_expired), one without sub (bad_claims)', async () => {
    await expectRefused(edge.url, await rs(k1, 'kid1', uniqueSub(), { expiresIn: -120 }), 'token_expired');
    await expectRefused(edge.url, await rs(k1, 'kid1', uniqueSub(), { sub: null }), 'bad_claims');
  });

  it('rotation: the server now serves kid2 (RS256) and kid3 (ES256) and has dropped kid1; kid2 is accepted after one refetch', async () => {
    jwks.setKeys([await publicJwk(k2, 'kid2', 'RS256'), await publicJwk(k3, 'kid3', 'ES256')]);
    const before = jwks.fetches;
    const sub = uniqueSub();
    const client = await authByFrame(edge.url, await rs(k2, 'kid2', sub));
    expect(await client.next()).toMatchObject({ type: 'auth_success', user_id: sub });
    expect(jwks.fetches).toBe(before + 1);
    client.close();
  });

  it('kid2 and kid3 are then served from the new cache on every path', async () => {
    const before = jwks.fetches;
    const sub2 = uniqueSub();
    await expectAccepted(edge.url, await rs(k2, 'kid2', sub2), sub2);
    const sub3 = uniqueSub();
    await expectAccepted(edge.url, await signToken(k3.privateKey, { alg: 'ES256', kid: 'kid3', sub: sub3 }), sub3);
    expect(jwks.fetches).toBe(before);
  });

  it('a token with the dropped kid1 is refused (unknown_key)', async () => {
    await expectRefused(edge.url, await rs(k1, 'kid1'), 'unknown_key');
  });

  it('a kid3 header on an RS256 token (the key is EC) is refused', async () => {
    await expectRefused(edge.url, await signToken(k2.privateKey, { alg: 'RS256', kid: 'kid3', sub: uniqueSub() }), undefined);
  });

  it('an authenticated connection is undisturbed by all the refusals, and the node keeps serving', async () => {
    const sub = uniqueSub();
    const client = new TestClient(edge.url, { headers: { authorization: `Bearer ${await rs(k2, 'kid2', sub)}` } });
    await client.opened;
    expect(await client.next()).toMatchObject({ type: 'auth_success', user_id: sub });
    await expectRefused(edge.url, await rs(foreign, 'kid2'), 'bad_signature');
    await expectRefused(edge.url, await rs(foreign, 'kid-other'), 'unknown_key');
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
    await expectServing(edge.url, await rs(k2, 'kid2'));
  });
});

describe('JWKS_URL with the default cooldown', () => {
  let jwks: JwksServer;
  let edge: EdgeProcess;
  let k1: KeyPair;
  let k2: KeyPair;
  let foreign: KeyPair;

  beforeAll(async () => {
    k1 = edKeys();
    k2 = edKeys();
    foreign = edKeys();
    jwks = await startJwksServer([await publicJwk(k1, 'ed1', 'EdDSA')]);
    edge = await startEdge({ JWT_SECRET: undefined, JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: undefined });
  });
  afterAll(async () => {
    await edge.stop();
    await jwks.close();
  });

  it('EdDSA keys from a set work', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(k1.privateKey, { alg: 'EdDSA', kid: 'ed1', sub }), sub);
    expect(jwks.fetches).toBe(1);
  });

  it('a burst of unknown kids does not refetch the set once per token', async () => {
    const before = jwks.fetches;
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      const client = await authByFrame(edge.url, await signToken(foreign.privateKey, { alg: 'EdDSA', kid: `nope-${i}`, sub: uniqueSub() }));
      await expectAuthError(client, 'unknown_key');
    }
    // At most one refetch per cooldown (1 s) that the burst spans; without a cooldown it would be 6.
    const cooldowns = Math.ceil((Date.now() - started) / 1000);
    expect(jwks.fetches - before).toBeLessThanOrEqual(cooldowns + 1);
  });

  it('after the cooldown a new kid is fetched and accepted', async () => {
    jwks.setKeys([await publicJwk(k1, 'ed1', 'EdDSA'), await publicJwk(k2, 'ed2', 'EdDSA')]);
    await sleep(1200);
    const sub = uniqueSub();
    const client = await authByFrame(edge.url, await signToken(k2.privateKey, { alg: 'EdDSA', kid: 'ed2', sub }));
    expect(await client.next()).toMatchObject({ type: 'auth_success', user_id: sub });
    client.close();
  });
});

describe('JWKS_URL when the key set is slow or failing', () => {
  let jwks: JwksServer;
  let edge: EdgeProcess;
  let k1: KeyPair;

  beforeAll(async () => {
    k1 = rsaKeys();
    jwks = await startJwksServer([await publicJwk(k1, 'kid1', 'RS256')]);
    edge = await startEdge({ JWT_SECRET: undefined, JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '0', AUTH_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await edge.stop();
    await jwks.close();
  });

  it('a key set answering 500: the token is refused, never accepted', async () => {
    jwks.setStatus(500);
    const client = await authByFrame(edge.url, await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() }));
    const frame = await client.next((f) => f.type === 'auth_error' || f.type === 'auth_success');
    expect(frame).toMatchObject({ type: 'auth_error', error: expect.any(String), code: expect.any(String) });
    expect((await withTimeout(client.closed, 5000, 'close')).code).toBe(4001);
    expect(client.frames.map((f) => f.type)).toEqual(['auth_error']);
    expect(jwks.fetches).toBeGreaterThan(0);

    const upgrade = new TestClient(edge.url, { headers: { authorization: `Bearer ${await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() })}` } });
    const refused = await upgrade.opened.then(() => false, () => true);
    expect(refused).toBe(true);
    upgrade.ws.terminate();
  });

  it('a key set slower than AUTH_TIMEOUT_MS: auth_error (auth_timeout), close 4001, and no auth_success afterwards', async () => {
    jwks.setStatus(200);
    jwks.setDelay(3000);
    const client = await authByFrame(edge.url, await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() }));
    await expectAuthError(client, 'auth_timeout');
    // Let the slow fetch finish: nothing more may reach (or be attempted on) the closed socket.
    await sleep(2500);
    expect(client.frames.map((f) => f.type)).toEqual(['auth_error']);
  });

  it('once the set is back the node serves again', async () => {
    jwks.setDelay(0);
    await expectServing(edge.url, await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() }));
  });
});
