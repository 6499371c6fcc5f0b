export type {
  Broker,
  ChannelLog,
  NodeBus,
  BrokerEvent,
  BrokerHealth,
  BrokerListener,
  BrokerOptions,
  ChannelPosition,
  HistoryPage,
  PublishRequest,
  PublishTarget,
  ResetListener,
  SignalListener,
} from './broker.js';
export { MemoryPresence, joinFrame, leaveFrame } from './presence.js';
export type { PresenceStore, PresenceSnapshot, PresenceUser, PresenceSignal } from './presence.js';
export { RedisPresence } from './presence-redis.js';
export type { RedisPresenceOptions } from './presence-redis.js';
export { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_S } from './broker.js';
export { MemoryBroker, newEpoch } from './memory.js';
export { RedisBroker } from './redis.js';
export type { RedisBrokerOptions, BrokerLogger } from './redis.js';
export { BrokerUnavailableError } from './errors.js';
export { PUBLISH_FUNCTION_LUA } from './scripts.js';
export { defineLua, luaSource } from './lua.js';
export type { LuaScript } from './lua.js';
