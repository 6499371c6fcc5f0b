export type {
  SessionPosition,
  SessionRecord,
  SessionStore,
  WorkerInfo,
  WorkerRegistry,
  Membership,
  ConnectionDirectory,
  UserBudget,
  Checkpoints,
  NodeStats,
  ChannelStat,
} from './types.js';
export { MemorySessionStore, MemoryRegistry } from './memory.js';
export { RedisSessionStore, RedisRegistry, sessionKey, DEFAULT_HEARTBEAT_MS } from './redis.js';
export type { RedisRegistryOptions, StoreLogger } from './redis.js';

import { randomBytes } from 'node:crypto';

export function newSessionId(): string {
  return `s_${randomBytes(12).toString('base64url')}`;
}
