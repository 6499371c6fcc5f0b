import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, rawUpgrade, startEdge, TestClient, UpgradeRefused, type EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';

/**
 * PROTOCOL.md §9 "Admission", each against a real edge: unauthenticated sockets count against
 * MAX_PENDING_AUTH and never lock users out of MAX_TOTAL_CONNECTIONS (finding 5 of issue 11);
 * MAX_CONNECTIONS_PER_IP, with X-Forwarded-For believed only from TRUSTED_PROXIES.
 */

async function stats(edge: EdgeProcess): Promise<Record<string, number>> {
  return (await (await fetch(`${edge.http}/stats`)).json()) as Record<string, number>;
}

async function openRaw(url: string, headers: Record<string, string> = {}): Promise<TestClient> {
  const client = new TestClient(url, { headers });
  await client.opened;
  return client;
}

describe('MAX_PENDING_AUTH and MAX_TOTAL_CONNECTIONS', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ MAX_TOTAL_CONNECTIONS: '3', MAX_PENDING_AUTH: '4', AUTH_TIMEOUT_MS: '60000' });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('sockets that never authenticate fill MAX_PENDING_AUTH (503) and cannot lock users out', async () => {
    for (let i = 0; i < 4; i++) clients.push(await openRaw(edge.url));
    const refused = await rawUpgrade(edge.url);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'too_many_connections' });

    // Every real login still works: by first frame (pending → authenticated) and at upgrade.
    const token = await hsToken({ sub: 'real', permissions: ['*:read'] });
    const byHeader = new TestClient(`${edge.url}?token=${token}`);
    clients.push(byHeader);
    expect(await byHeader.next()).toMatchObject({ type: 'auth_success' });
    for (let i = 0; i < 2; i++) {
      // A pending socket that authenticates moves from the pending count to the total one.
      const pending = clients[i]!;
      pending.send({ type: 'auth', token });
      expect(await pending.next()).toMatchObject({ type: 'auth_success' });
    }
    expect((await stats(edge))['authenticated_connections']).toBe(3);

    // The node is now full of authenticated connections: the next upgrade is 503 ...
    const full = new TestClient(`${edge.url}?token=${token}`);
    await expect(full.opened).rejects.toMatchObject({ status: 503 });
    // ... and a pending socket that authenticates now is refused with auth_error + 4009.
    const late = clients[2]!;
    late.send({ type: 'auth', token });
    expect(await late.next()).toMatchObject({ type: 'auth_error', error: 'too_many_connections' });
    expect((await late.closed).code).toBe(4009);
  });

  it('a pending slot is given back when its socket leaves', async () => {
    expect(await waitFor(async () => ((await stats(edge))['connections'] === 0 ? true : undefined), 10_000, 'connections gone')).toBe(true);
    for (let i = 0; i < 4; i++) clients.push(await openRaw(edge.url));
    expect((await rawUpgrade(edge.url)).status).toBe(503);
    const gone = clients.pop()!;
    gone.close();
    await gone.closed;
    const again = await waitFor(async () => ((await rawUpgrade(edge.url)).status === 101 ? true : undefined), 10_000, 'a pending slot again');
    expect(again).toBe(true);
  });
});

describe('MAX_CONNECTIONS_PER_IP', () => {
  let direct: EdgeProcess;
  let proxied: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    [direct, proxied] = await Promise.all([
      startEdge({ MAX_CONNECTIONS_PER_IP: '2' }),
      startEdge({ MAX_CONNECTIONS_PER_IP: '2', TRUSTED_PROXIES: '10.9.0.0/16, 127.0.0.1' }),
    ]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await Promise.all([direct?.stop(), proxied?.stop()]);
  });

  it('the connection past the limit gets HTTP 429 too_many_connections; X-Forwarded-For from an untrusted peer changes nothing', async () => {
    const token = await hsToken({ sub: 'ip-user', permissions: ['*:read'] });
    clients.push(await openRaw(direct.url, { 'x-forwarded-for': '203.0.113.1' }));
    clients.push((await connect(direct.url, token)).client);
    const refused = await rawUpgrade(direct.url, { 'x-forwarded-for': '203.0.113.2' });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'too_many_connections' });
    expect(refused.headers['x-content-type-options']).toBe('nosniff');
    const withToken = new TestClient(`${direct.url}?token=${token}`);
    await expect(withToken.opened).rejects.toBeInstanceOf(UpgradeRefused);
    await expect(withToken.opened).rejects.toMatchObject({ status: 429 });
  });

  it('behind a trusted proxy each client address counts on its own, from the right-most untrusted hop', async () => {
    // 127.0.0.1 (the test) is a trusted proxy here; 10.9.1.1 too (CIDR); 198.51.100.7 is the client.
    const as = (client: string) => ({ 'x-forwarded-for': client });
    clients.push(await openRaw(proxied.url, as('198.51.100.7')));
    clients.push(await openRaw(proxied.url, as('1.2.3.4, 198.51.100.7, 10.9.1.1')));
    expect((await rawUpgrade(proxied.url, as('198.51.100.7'))).status).toBe(429);
    // A spoofed left-most hop does not make a new address: the client is still 198.51.100.7.
    expect((await rawUpgrade(proxied.url, as('5.6.7.8, 198.51.100.7'))).status).toBe(429);
    // Another client behind the same proxy is not affected.
    expect((await rawUpgrade(proxied.url, as('198.51.100.8'))).status).toBe(101);
  });
});

describe('TRUSTED_PROXIES is checked at start-up', () => {
  it('a bad entry stops the edge with an error naming the setting', async () => {
    await expect(startEdge({ TRUSTED_PROXIES: '10.0.0.0/99' }, { timeoutMs: 15_000 })).rejects.toThrow(/TRUSTED_PROXIES/);
  });
});
