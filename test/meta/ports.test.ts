import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startEdge } from '../harness/edge.js';
import { childEnv } from '../harness/env.js';
import { freePort, isAddressInUse, startOnFreePort } from '../harness/ports.js';

/** The harness's answers to two ways a green run can lie: a port taken between pick and bind, and a leaking environment. */
describe('harness: ports taken before a child binds them', () => {
  const held: Server[] = [];
  const hold = async (): Promise<number> => {
    const srv = createServer();
    held.push(srv);
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
    return (srv.address() as { port: number }).port;
  };
  afterAll(() => {
    for (const srv of held) srv.close();
  });

  it('recognises "address in use" as the servers it starts say it', () => {
    for (const said of [
      'Error: listen EADDRINUSE: address already in use 127.0.0.1:4000',
      '# Warning: Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use',
      'nginx: [emerg] bind() to 127.0.0.1:8080 failed (98: Address already in use)',
      '[ALERT] Starting frontend fe: cannot bind socket (Address already in use) [127.0.0.1:80]',
      'org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:9092: Address already in use. java.net.BindException',
      '{"level":60,"msg":"cannot listen on 127.0.0.1:8765 (in use, or not permitted)"}',
    ]) {
      expect(isAddressInUse(said), said).toBe(true);
    }
    for (const said of ['connection refused', 'JWT_SECRET must be at least 32 bytes', 'edge exited (1) before listening']) expect(isAddressInUse(said), said).toBe(false);
  });

  it('starts again on a fresh port when the picked one was taken, and only then', async () => {
    const taken = await hold();
    const picked: number[] = [];
    const pick = async () => (picked.length === 0 ? taken : freePort());
    const bound = await startOnFreePort(
      (port) =>
        new Promise<Server>((resolve, reject) => {
          picked.push(port);
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(port, '127.0.0.1', () => resolve(srv));
        }),
      { pick },
    );
    held.push(bound);
    expect(picked[0]).toBe(taken);
    expect(picked).toHaveLength(2);
    expect((bound.address() as { port: number }).port).toBe(picked[1]);
    // Any other failure is not retried.
    let calls = 0;
    await expect(
      startOnFreePort(async () => {
        calls++;
        throw new Error('config refused');
      }),
    ).rejects.toThrow('config refused');
    expect(calls).toBe(1);
    // Nor forever.
    await expect(startOnFreePort(async () => Promise.reject(new Error('EADDRINUSE')), { attempts: 3 })).rejects.toThrow(/3 attempts/);
  });

  it('an edge told a port that is taken comes up on another one', async () => {
    const taken = await hold();
    const edge = await startEdge({ PORT: String(taken) });
    try {
      expect(edge.port).not.toBe(taken);
      expect((await fetch(`${edge.http}/health`)).status).toBe(200);
    } finally {
      await edge.stop();
    }
  });
});

describe('harness: child environments', () => {
  it('carry the allow-list and the test settings, nothing else from this process', () => {
    const before = { ...process.env };
    process.env['REDIS_URL'] = 'redis://leaked:6379';
    process.env['KAFKA_SERVERS'] = 'leaked:9092';
    try {
      const env = childEnv({ PORT: '0' }, { JWT_SECRET: 'x', HOME: undefined });
      expect(env['REDIS_URL']).toBeUndefined();
      expect(env['KAFKA_SERVERS']).toBeUndefined();
      expect(env['PATH']).toBe(process.env['PATH']);
      expect(env).toMatchObject({ PORT: '0', JWT_SECRET: 'x' });
      // undefined removes even an allow-listed variable.
      expect('HOME' in env).toBe(false);
      // A later layer wins.
      expect(childEnv({ A: '1' }, { A: '2' })['A']).toBe('2');
    } finally {
      for (const k of ['REDIS_URL', 'KAFKA_SERVERS']) if (before[k] === undefined) delete process.env[k];
      else process.env[k] = before[k];
    }
  });

  it('reach a real edge that way: a REDIS_URL in the shell does not make it a cluster node', async () => {
    const before = process.env['REDIS_URL'];
    process.env['REDIS_URL'] = 'redis://127.0.0.1:1';
    try {
      const edge = await startEdge({});
      try {
        const health = (await (await fetch(`${edge.http}/health`)).json()) as { redis: { status: string } };
        expect(health.redis.status).toBe('disabled');
      } finally {
        await edge.stop();
      }
    } finally {
      if (before === undefined) delete process.env['REDIS_URL'];
      else process.env['REDIS_URL'] = before;
    }
  });
});
