import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const KEY = 'bk-rebalance';
const CLIENTS = 60;
const CHANNEL = 'rb:feed';

interface Follower {
  client: TestClient;
  /** Every connection this follower has had, oldest first: their frames make its history. */
  clients: TestClient[];
  sessionId: string;
  moves: number;
}

const seqsOf = (f: Follower) =>
  f.clients.flatMap((c) => c.frames.filter((fr: Frame) => fr.type === 'event' && fr['channel'] === CHANNEL).map((fr) => fr['seq'] as number));

describe('rebalancing after scale-out', () => {
  let redis: RedisServer;
  const nodes: EdgeProcess[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  const start = async (id: string) => {
    const node = await startEdge({
      REDIS_URL: redis.url,
      WORKER_ID: id,
      BROADCAST_API_KEY: KEY,
      HEARTBEAT_MS: '300',
      REBALANCE_MIN_CONNECTIONS: '5',
      MAX_CONNECTIONS_PER_USER: '1000',
    });
    nodes.push(node);
    return node;
  };
  const connections = async (node: EdgeProcess) => ((await (await fetch(`${node.http}/stats`)).json()) as { connections: number }).connections;

  it('spreads clients to within 20% of the mean and no client loses an event', async () => {
    for (const id of ['n1', 'n2', 'n3']) await start(id);
    const token = await hsToken({ sub: 'viewer', channels: ['rb:*'] });
    const followers: Follower[] = [];
    let done = false;

    // The test plays a least-connections load balancer: a shed client goes to the emptiest node.
    const follow = (f: Follower) => {
      void f.client.closed.then(async ({ code }) => {
        if (code !== 1012 || done) return;
        f.moves++;
        const loads = await Promise.all(nodes.map(async (n) => ({ n, c: await connections(n).catch(() => Infinity) })));
        const target = loads.sort((x, y) => x.c - y.c)[0]!.n;
        const { client } = await connect(target.url, token, { session_id: f.sessionId }).catch((err: unknown) => {
          if (!done) throw err;
          return { client: f.client };
        });
        if (done) return client.close();
        f.client = client;
        f.clients.push(client);
        follow(f);
      });
    };
    for (let i = 0; i < CLIENTS; i++) {
      const { client, hello } = await connect(nodes[i % 3]!.url, token);
      await client.request({ type: 'subscribe', channel: CHANNEL });
      const f: Follower = { client, clients: [client], sessionId: hello['session_id'] as string, moves: 0 };
      follow(f);
      followers.push(f);
    }

    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing && i < 2000; i++) {
        const res = await fetch(`${nodes[0]!.http}/broadcast`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ channel: CHANNEL, data: i }),
        });
        if (res.status === 202) published = ((await res.json()) as { seq: number }).seq;
        await new Promise((r) => setTimeout(r, 25)); // sleep-ok: paces the publisher into a steady stream; nothing waits on it
      }
    })();

    await start('n4');
    await start('n5');
    const spread = await waitFor(async () => {
      const counts = await Promise.all(nodes.map(connections));
      const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
      return counts.reduce((a, b) => a + b, 0) === CLIENTS && counts.every((c) => Math.abs(c - mean) <= 0.2 * mean) ? counts : undefined;
    }, 45_000, 'connections within 20% of the mean');
    expect(spread).toHaveLength(5);

    publishing = false;
    await publisher;
    await waitFor(() => followers.every((f) => seqsOf(f).includes(published)) || undefined, 15_000, 'every follower has the last event');
    expect(followers.some((f) => f.moves > 0)).toBe(true);
    for (const f of followers) {
      const unique = [...new Set(seqsOf(f))];
      // In order and without a gap: every seq from the first one received up to the last published.
      expect(unique).toEqual(Array.from({ length: published - unique[0]! + 1 }, (_, i) => unique[0]! + i));
      expect(unique[0]).toBe(1);
    }
    done = true;
    for (const f of followers) f.client.close();
  }, 120_000);
});
