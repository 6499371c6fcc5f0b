export type {
  Broker,
  BrokerEvent,
  BrokerHealth,
  BrokerListener,
  BrokerOptions,
  ChannelPosition,
  HistoryPage,
  PublishRequest,
  PublishTarget,
  ResetListener,
} from './broker.js';
export { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_S } from './broker.js';
export { MemoryBroker, newEpoch } from './memory.js';
export { RedisBroker } from './redis.js';
export type { RedisBrokerOptions, BrokerLogger } from './redis.js';
export { BrokerUnavailableError } from './errors.js';
export { PUBLISH_FUNCTION_LUA } from './scripts.js';
