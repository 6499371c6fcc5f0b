import { int, list, oneOf, str, type Setting } from './settings.js';

/**
 * Settings every Switchyard process reads the same way (edge and runner): one name, one
 * default, one range. The descriptions are the edge's; a process whose meaning differs
 * keeps the definition and words it for itself with `describedAs`.
 */
export const sharedSettings = {
  logLevel: oneOf('LOG_LEVEL', 'info', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'pino log level'),
  historySize: int('HISTORY_SIZE', 1000, 'events kept per channel for `since` and resume', { min: 0 }),
  historyTtlS: int('HISTORY_TTL_S', 3600, 'seconds a channel’s history lives after its last event', { min: 1 }),
  redisUrl: str('REDIS_URL', undefined, 'Redis for the cluster; unset: this node runs alone in memory'),
  redisClusterNodes: list('REDIS_CLUSTER_NODES', 'Redis Cluster seed nodes, `host:port,...`'),
  readyRedisGraceMs: int('READY_REDIS_GRACE_MS', 10_000, '/ready turns 503 once Redis has been unreachable this long', { min: 0 }),
} as const;

/** The same setting (name, default, parsing), described for the process that reads it. */
export function describedAs<T>(setting: Setting<T>, doc: string): Setting<T> {
  return { ...setting, doc };
}
