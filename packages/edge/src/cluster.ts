import { MemoryBroker, RedisBroker, type Broker } from '@switchyard/broker';
import { MemoryRegistry, MemorySessionStore, RedisRegistry, RedisSessionStore, type SessionStore, type WorkerRegistry } from '@switchyard/sessions';
import type { Logger } from 'pino';
import type { EdgeConfig } from './config.js';

export interface ClusterParts {
  broker: Broker;
  sessions: SessionStore;
  registry: WorkerRegistry;
}

/**
 * Picks the node's shared state: Redis (or a Redis Cluster) when configured, else memory
 * for a node that runs alone. All three Redis-backed parts share the broker's command
 * connection; the broker adds one subscriber connection.
 */
export function createClusterParts(config: EdgeConfig, logger: Logger): ClusterParts {
  const redisConfigured = config.redisUrl !== undefined || (config.redisClusterNodes?.length ?? 0) > 0;
  if (!redisConfigured) {
    return {
      broker: new MemoryBroker({ historySize: config.historySize, historyTtlS: config.historyTtlS }),
      sessions: new MemorySessionStore(config.sessionTtlS),
      registry: new MemoryRegistry(config.workerId),
    };
  }
  const log = logger.child({ component: 'redis' });
  const broker = new RedisBroker({
    ...(config.redisClusterNodes !== undefined ? { clusterNodes: config.redisClusterNodes } : { url: config.redisUrl! }),
    nodeId: config.workerId,
    historySize: config.historySize,
    historyTtlS: config.historyTtlS,
    logger: log,
  });
  return {
    broker,
    sessions: new RedisSessionStore(broker.client, { ttlS: config.sessionTtlS, logger: log, refreshMs: config.heartbeatMs }),
    registry: new RedisRegistry(broker.client, { workerId: config.workerId, heartbeatMs: config.heartbeatMs, retainS: config.sessionTtlS, logger: log }),
  };
}
