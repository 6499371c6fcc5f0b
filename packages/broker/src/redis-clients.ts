import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';

export type Client = Redis | Cluster;

/** Seconds a command may wait for Redis before it fails (and the caller degrades). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
/**
 * How often a Redis Cluster client re-reads the slot map. A failover or slot move makes the
 * old owner drop its shard-channel subscribers without closing the connection, so only a
 * fresh slot map tells the subscriber to subscribe again on the new owner.
 */
const CLUSTER_TOPOLOGY_REFRESH_MS = 1000;
const CLUSTER_TOPOLOGY_TIMEOUT_MS = 5000;

export interface RedisClients {
  /** Commands: fail fast while Redis is away (no offline queue). */
  cmd: Client;
  /** Pub/sub: queues its (S)SUBSCRIBEs while Redis is away, so they resume by themselves. */
  sub: Client;
  /** A Redis Cluster: pub/sub is sharded (SSUBSCRIBE/SPUBLISH). */
  sharded: boolean;
}

/** The broker's two connections to one Redis (`url`) or a Redis Cluster (`clusterNodes`). */
export function createRedisClients(options: { url?: string | undefined; clusterNodes?: readonly string[] | undefined; commandTimeoutMs?: number | undefined }): RedisClients {
  const base: RedisOptions = {
    // Fail fast while Redis is away: the edge degrades instead of piling up requests.
    maxRetriesPerRequest: 1,
    // While Redis is away a command fails at once instead of queueing: the edge then
    // degrades (local delivery, fail-open admission) rather than stalling every client.
    enableOfflineQueue: false,
    // Commands issued in the same tick share one write: many concurrent publishes, few syscalls.
    enableAutoPipelining: true,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    lazyConnect: false,
  };
  const sharded = options.clusterNodes !== undefined && options.clusterNodes.length > 0;
  if (sharded) {
    const nodes = options.clusterNodes!.map(parseHostPort);
    const clusterOptions: ClusterOptions = {
      redisOptions: base,
      enableOfflineQueue: false,
      clusterRetryStrategy: base.retryStrategy!,
      slotsRefreshInterval: CLUSTER_TOPOLOGY_REFRESH_MS,
      // On a busy host the default 1 s can time out every refresh and leave a stale map.
      slotsRefreshTimeout: CLUSTER_TOPOLOGY_TIMEOUT_MS,
    };
    return {
      cmd: new Cluster(nodes, clusterOptions),
      sub: new Cluster(nodes, { ...clusterOptions, enableOfflineQueue: true, shardedSubscribers: true }),
      sharded,
    };
  }
  const url = options.url ?? 'redis://127.0.0.1:6379';
  return {
    cmd: new Redis(url, base),
    sub: new Redis(url, { ...base, commandTimeout: undefined, maxRetriesPerRequest: null, enableOfflineQueue: true }),
    sharded,
  };
}

function parseHostPort(spec: string): { host: string; port: number } {
  const trimmed = spec.replace(/^redis:\/\//, '');
  const i = trimmed.lastIndexOf(':');
  const port = Number(trimmed.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) throw new Error(`REDIS_CLUSTER_NODES entry "${spec}" must be host:port`);
  return { host: trimmed.slice(0, i), port };
}
