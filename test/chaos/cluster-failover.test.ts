import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEdge, type EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis.js';
import { recordFigures } from './figures.js';
import { CHAOS_EDGE_ENV, Prober, Publisher, Watcher, assertAlive, expectIntact, verdictFigures, chaosToken, health, readyStatus, settle, verify } from './workload.js';

/**
 * A 3-primary / 3-replica Redis Cluster under three edges; while events stream, the primary
 * that owns the busiest channels is failed over (`CLUSTER FAILOVER` on its replica, the
 * coordinated kind: the replica takes over only once it has every write).
 */
describe('Redis Cluster failover mid-stream (3 primaries, 3 replicas, 3 edges)', () => {
  let cluster: RedisCluster;
  let edges: EdgeProcess[] = [];
  const stoppers: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3, 1);
    // Seeds: every node, so a client can find the cluster whichever role each has later.
    const seeds = cluster.allPorts.map((p) => `127.0.0.1:${p}`).join(',');
    // One at a time, so that afterAll stops every edge that did start if a later one fails.
    edges = [];
    for (const i of [0, 1, 2]) edges.push(await startEdge({ ...CHAOS_EDGE_ENV, REDIS_CLUSTER_NODES: seeds, WORKER_ID: `fo-e${i}` }, { timeoutMs: 60_000 }));
    await waitFor(async () => {
      for (const e of edges) if ((await health(e))['websocket'].total_workers !== 3) return undefined;
      return true;
    }, 30_000, 'three workers');
  }, 180_000);

  afterAll(async () => {
    for (const stop of stoppers.splice(0)) await stop();
    await Promise.all(edges.map((e) => e.stop()));
    await cluster?.stop();
  });

  it('loses, repeats and reorders nothing when a primary fails over under load', async () => {
    const channels = ['fo:a', 'fo:b', 'fo:c', 'fo:d', 'fo:e', 'fo:f'];
    const primary = cluster.masterFor('sy:{fo:a}');
    const onPrimary = channels.filter((ch) => cluster.masterFor(`sy:{${ch}}`) === primary);
    const token = await chaosToken('fo-user', 'fo:');
    const publishers = edges.map((_, i) => new Publisher(`fo:p${i}`, channels));
    const watchers = edges.map((_, i) => new Watcher(`fo:w${i}`, channels, token));
    await Promise.all(watchers.map((w, i) => w.open(edges[i]!)));
    await Promise.all(publishers.map((p, i) => p.start(edges[i]!, token, 10)));
    stoppers.push(...publishers.map((p) => () => p.stop()), ...watchers.map((w) => () => w.close()));
    await waitFor(() => publishers.every((p) => p.sequenced().length >= 20) || undefined, 30_000, 'traffic flowing');
    const prober = new Prober(edges);
    stoppers.push(() => prober.stop());
    prober.start();

    const t0 = Date.now();
    const promoted = await cluster.failover(primary);
    const promotedMs = Date.now() - t0;
    // Writes to the moved slots succeed again (a seq from the new primary) on every edge.
    await waitFor(
      () => publishers.every((p) => p.sequenced().some((a) => a.at > t0 + promotedMs && onPrimary.includes(a.channel))) || undefined,
      30_000,
      'sequenced publishes on the failed-over slots from every edge',
    );
    const sequencedAgainMs = Date.now() - t0;
    // A watcher moves edges right after, resuming from its last seq.
    await watchers[1]!.resume(edges[2]!);
    const before = publishers[0]!.sequenced().length;
    // Live traffic goes on for 3 s after the failover (a scenario length, not a wait for a result).
    await waitFor(() => (Date.now() - t0 >= 3000 && publishers[0]!.sequenced().length >= before + 30) || undefined, 30_000, 'traffic after the failover');
    await Promise.all(publishers.map((p) => p.stop()));
    const settleMs = await settle(publishers, watchers);
    prober.stop();
    const v = verify(publishers, watchers);
    // A coordinated failover keeps history: nobody may be told recovered:false.
    expectIntact(v, 0, watchers);
    expect(watchers[1]!.resumes.every((r) => r.recovered === true)).toBe(true);
    assertAlive(edges);
    expect(prober.samples.every((s) => s.httpStatus === 200)).toBe(true);
    for (const e of edges) {
      await waitFor(async () => ((await health(e))['status'] === 'healthy' && (await readyStatus(e)) === 200 ? true : undefined), 30_000, 'healthy and ready');
    }
    const degradedAcks = publishers.flatMap((p) => p.acks).filter((a) => a.seq === null);
    recordFigures('cluster_failover', {
      failed_over_primary: primary,
      promoted_replica: promoted,
      channels_on_that_primary: onPrimary.length,
      promoted_after_ms: promotedMs,
      sequenced_again_on_every_edge_after_ms: sequencedAgainMs,
      caught_up_after_stop_ms: settleMs,
      ...verdictFigures(v, publishers),
      publish_errors: publishers.flatMap((p) => p.errors).length,
      not_healthy_samples: prober.samples.filter((s) => s.status !== 'healthy').length,
      not_ready_samples: prober.samples.filter((s) => s.ready !== 200).length,
    });
  }, 120_000);
});
