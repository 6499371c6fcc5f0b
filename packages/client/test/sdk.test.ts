import { afterEach, describe, expect, it } from 'vitest';
import { followJob, HttpError, httpBaseOf, SwitchyardClient, type ChannelEvent, type ClientOptions, type ConnectionState, type FetchLike } from '../src/index.js';
import { MemoryServer } from './memory-socket.js';

const clients: SwitchyardClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function make(server: MemoryServer, options: Partial<ClientOptions> = {}): SwitchyardClient {
  const c = new SwitchyardClient({ url: 'ws://node.test:8765/ws', token: 'alice', WebSocket: server.WebSocket, reconnect: { initialDelayMs: 1, maxDelayMs: 5 }, ...options });
  clients.push(c);
  return c;
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    // sleep-ok: the poll interval of a bounded wait on a condition
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('event ids', () => {
  it('are <epoch>:<seq>, and differ for two events with the same seq across a history reset', async () => {
    const server = new MemoryServer();
    const client = make(server);
    const events: ChannelEvent[] = [];
    client.on('event', (e) => events.push(e));
    await client.subscribe('room');
    server.emit('room', 'said', 1);
    await until(() => events.length === 1, 'the first event');
    const reset = new Promise((resolve) => client.on('gap', resolve));
    server.reset('room', 'e2');
    expect(await reset).toMatchObject({ kind: 'reset', channel: 'room', epoch: 'e2' });
    server.emit('room', 'said', 2);
    await until(() => events.length === 2, 'the event after the reset');
    expect(events.map((e) => [e.seq, e.id])).toEqual([
      [1, 'e1:1'],
      [1, 'e2:1'],
    ]);
  });
});

describe('reconnecting states say who closed', () => {
  it('server: the server closed the socket', async () => {
    const server = new MemoryServer();
    const client = make(server);
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    await client.waitForConnection();
    server.sockets[0]!.serverClose(1011, 'internal error');
    const r = await until(() => states.find((s) => s.status === 'reconnecting'), 'reconnecting');
    expect(r).toMatchObject({ status: 'reconnecting', closeCode: 1011, closedBy: 'server' });
  });

  it('client: the client gave up waiting for auth_success (connect timeout)', async () => {
    const server = new MemoryServer();
    server.silent.add('slow');
    const client = make(server, { token: 'slow', connectTimeoutMs: 30 });
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    const r = await until(() => states.find((s) => s.status === 'reconnecting'), 'reconnecting');
    expect(r).toMatchObject({ status: 'reconnecting', closeReason: 'connect_timeout', closedBy: 'client' });
  });
});

describe('setToken', () => {
  it('connects again with the new token after the old one was refused', async () => {
    const server = new MemoryServer();
    server.refused.add('old');
    const client = make(server, { token: 'old' });
    await expect(client.waitForConnection()).rejects.toMatchObject({ code: 'auth_failed' });
    expect(client.state.status).toBe('failed');
    client.setToken('fresh');
    const hello = await client.waitForConnection();
    expect(hello.userId).toBe('fresh');
    expect(server.open).toBe(1);
  });

  it('re-authenticates a live connection with the new token, without reconnecting', async () => {
    const server = new MemoryServer();
    const client = make(server);
    await client.waitForConnection();
    client.setToken('alice-2');
    await until(() => server.received.find((f) => f['type'] === 'auth' && f['token'] === 'alice-2'), 'the re-auth frame');
    expect(server.received.filter((f) => f['type'] === 'auth').at(-1)).toMatchObject({ token: 'alice-2', ref: expect.any(String) });
    expect(server.sockets).toHaveLength(1);
    expect(client.state.status).toBe('connected');
  });

  it('refuses what is not a token', () => {
    const client = make(new MemoryServer(), { autoConnect: false });
    expect(() => client.setToken('')).toThrow(/"token" must be a non-empty JWT/);
    expect(() => client.setToken(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });
});

describe('submitJob', () => {
  function fakeFetch(status: number, body: unknown, calls: { url: string; headers: Record<string, string>; body: string }[] = []): FetchLike {
    return async (url, init) => {
      calls.push({ url, headers: init.headers, body: init.body });
      return { status, text: async () => (typeof body === 'string' ? body : JSON.stringify(body)) };
    };
  }

  it('derives the HTTP base from the WebSocket URL', () => {
    expect(httpBaseOf('ws://127.0.0.1:8765/ws')).toBe('http://127.0.0.1:8765');
    expect(httpBaseOf('wss://example.com/rt/ws?x=1')).toBe('https://example.com/rt');
    expect(httpBaseOf('ws://h:1')).toBe('http://h:1');
    expect(() => httpBaseOf('http://h:1/ws')).toThrow(/ws:\/\//);
  });

  it('POSTs the job to /jobs with the token and resolves with its id', async () => {
    const calls: { url: string; headers: Record<string, string>; body: string }[] = [];
    const client = make(new MemoryServer(), { autoConnect: false, token: () => 'jwt-1', fetch: fakeFetch(202, { job_id: 'j-9' }, calls) });
    expect(await client.submitJob({ job_id: 'j-9', sample_id: 'S1', params: { stages: 2 } })).toEqual({ jobId: 'j-9' });
    expect(calls).toEqual([{ url: 'http://node.test:8765/jobs', headers: { authorization: 'Bearer jwt-1', 'content-type': 'application/json' }, body: '{"job_id":"j-9","sample_id":"S1","params":{"stages":2}}' }]);
  });

  it('uses the httpUrl option when set', async () => {
    const calls: { url: string; headers: Record<string, string>; body: string }[] = [];
    const client = make(new MemoryServer(), { autoConnect: false, httpUrl: 'https://api.example.com/', fetch: fakeFetch(202, { job_id: 'j' }, calls) });
    await client.submitJob({});
    expect(calls[0]!.url).toBe('https://api.example.com/jobs');
    expect(() => make(new MemoryServer(), { autoConnect: false, httpUrl: 'ftp://x' })).toThrow(/"httpUrl" must be an http/);
  });

  it('rejects a refusal with HttpError (status, serverCode), a lost request with connection_lost, a bad job before sending', async () => {
    const refused = make(new MemoryServer(), { autoConnect: false, fetch: fakeFetch(403, { error: 'not allowed to submit', code: 'forbidden' }) });
    const err = await refused.submitJob({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 403, serverCode: 'forbidden', code: 'server_error', message: expect.stringMatching(/403 forbidden: not allowed/) });
    const noId = make(new MemoryServer(), { autoConnect: false, fetch: fakeFetch(202, 'ok') });
    await expect(noId.submitJob({})).rejects.toMatchObject({ serverCode: 'bad_reply' });
    const down = make(new MemoryServer(), { autoConnect: false, fetch: async () => Promise.reject(new TypeError('fetch failed')) });
    await expect(down.submitJob({ job_id: 'x' })).rejects.toMatchObject({ code: 'connection_lost', retriable: true, message: expect.stringMatching(/retry with the same job_id/) });
    const calls: { url: string; headers: Record<string, string>; body: string }[] = [];
    const bad = make(new MemoryServer(), { autoConnect: false, fetch: fakeFetch(202, { job_id: 'x' }, calls) });
    await expect(bad.submitJob({ params: [] as unknown as Record<string, unknown> })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(bad.submitJob(null as never)).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(calls).toEqual([]);
    await bad.close();
    await expect(bad.submitJob({})).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('job state carries errors', () => {
  it('a refused job channel (not this user’s, or no such job) sets error instead of staying unknown', async () => {
    const server = new MemoryServer();
    server.forbidden.add('job:theirs');
    const client = make(server);
    const follower = followJob(client, 'theirs');
    await expect(follower.done).rejects.toMatchObject({ serverCode: 'forbidden' });
    expect(follower.state).toMatchObject({ status: 'unknown', error: { code: 'server_error', serverCode: 'forbidden' } });
    follower.stop();
  });

  it('a failed connection sets error; the next snapshot after setToken clears it', async () => {
    const server = new MemoryServer();
    server.refused.add('old');
    const client = make(server, { token: 'old' });
    const follower = followJob(client, 'mine');
    await until(() => follower.state.error, 'the error');
    expect(follower.state.error).toMatchObject({ code: 'auth_failed' });
    client.setToken('fresh');
    await client.waitForConnection();
    await until(() => server.sockets.at(-1)!.channels.has('job:mine'), 'the resubscribe');
    server.sockets.at(-1)!.serverSend({ type: 'snapshot', channel: 'job:mine', seq: 0, epoch: 'e1', data: { state: 'running', progress: 0.5 } });
    await until(() => follower.state.status === 'running', 'the snapshot');
    expect(follower.state.error).toBeUndefined();
    follower.stop();
  });
});
