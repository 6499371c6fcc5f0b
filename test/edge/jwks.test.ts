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
import { waitFor } from '../harness/ports.js';

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

  it('a token with no kid, signed by a key not in the set, is refused (bad_signature: the one key in the set does not verify it)', async () => {
    await expectRefused(edge.url, await rs(foreign, undefined), 'bad_signature');
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

  it('a kid3 header on an RS256 token (the key is EC) is refused (unknown_key: no RS256 key has that kid)', async () => {
    await expectRefused(edge.url, await signToken(k2.privateKey, { alg: 'RS256', kid: 'kid3', sub: uniqueSub() }), 'unknown_key');
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

  it('a new kid is fetched and accepted once the cooldown has passed (tokens before that are refused unknown_key)', async () => {
    jwks.setKeys([await publicJwk(k1, 'ed1', 'EdDSA'), await publicJwk(k2, 'ed2', 'EdDSA')]);
    const before = jwks.fetches;
    const sub = uniqueSub();
    const token = await signToken(k2.privateKey, { alg: 'EdDSA', kid: 'ed2', sub });
    // Within the cooldown the node may not refetch, so it refuses; it must accept within a few
    // cooldowns (each attempt closes its connection before the next).
    const hello = await waitFor(async () => {
      const client = await authByFrame(edge.url, token);
      const frame = await client.next((f) => f.type === 'auth_success' || f.type === 'auth_error');
      client.close();
      await withTimeout(client.closed, 5000, 'close');
      if (frame.type === 'auth_error') expect(frame).toMatchObject({ code: 'unknown_key' });
      return frame.type === 'auth_success' ? frame : undefined;
    }, 10_000, 'ed2 accepted after the cooldown');
    expect(hello).toMatchObject({ user_id: sub });
    expect(jwks.fetches).toBeGreaterThan(before);
  });
});

describe('JWKS_URL with a cooldown longer than the test (JWKS_COOLDOWN_MS=60000)', () => {
  let jwks: JwksServer;
  let edge: EdgeProcess;
  let k1: KeyPair;
  let foreign: KeyPair;

  beforeAll(async () => {
    k1 = edKeys();
    foreign = edKeys();
    jwks = await startJwksServer([await publicJwk(k1, 'ed1', 'EdDSA')]);
    edge = await startEdge({ JWT_SECRET: undefined, JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '60000' });
  });
  afterAll(async () => {
    await edge.stop();
    await jwks.close();
  });

  it('a burst of unknown kids after the first fetch refetches the set at most once, however slow the machine', async () => {
    const sub = uniqueSub();
    await expectAccepted(edge.url, await signToken(k1.privateKey, { alg: 'EdDSA', kid: 'ed1', sub }), sub);
    const before = jwks.fetches;
    expect(before).toBeGreaterThan(0);
    for (let i = 0; i < 6; i++) {
      const client = await authByFrame(edge.url, await signToken(foreign.privateKey, { alg: 'EdDSA', kid: `nope-${i}`, sub: uniqueSub() }));
      await expectAuthError(client, 'unknown_key');
    }
    // The count, not the clock: one cooldown spans the whole burst, so without a working
    // cooldown this would be 6.
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
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
    expect(frame).toMatchObject({ type: 'auth_error', error: expect.any(String), code: 'key_unavailable' });
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
    const linesBefore = edge.lines.length;
    await expectAuthError(client, 'auth_timeout');
    // The slow fetch then completes on the node, for a socket that is gone: the node must take
    // that in its stride (no crash, nothing logged as an error), and keep serving.
    await waitFor(() => (jwks.fetches > 0 && jwks.answered === jwks.fetches) || undefined, 10_000, 'the slow key set answer sent');
    await expectServing(edge.url, await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() }));
    expect(edge.proc.exitCode).toBeNull();
    const errors = edge.lines.slice(linesBefore).filter((l) => /"level":(50|60)/.test(l));
    expect(errors).toEqual([]);
  });

  it('once the set is back the node serves again', async () => {
    jwks.setDelay(0);
    await expectServing(edge.url, await signToken(k1.privateKey, { alg: 'RS256', kid: 'kid1', sub: uniqueSub() }));
  });
});
