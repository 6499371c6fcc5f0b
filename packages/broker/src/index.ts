export type {
  Broker,
  BrokerEvent,
  BrokerHealth,
  BrokerListener,
  BrokerOptions,
  ChannelPosition,
  HistoryPage,
  PublishRequest,
} from './broker.js';
export { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_S } from './broker.js';
export { MemoryBroker, newEpoch } from './memory.js';
