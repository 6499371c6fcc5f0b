import { MemoryBroker } from '@switchyard/broker';
import { afterAll, describe } from 'vitest';
import { MemoryJobStore } from '../src/index.js';
import { announcingStoreContract, jobStoreContract } from './store-contract.js';

describe('MemoryJobStore', () => {
  jobStoreContract(() => new MemoryJobStore({ ttlS: 60 }));
});

describe('MemoryJobStore with the node’s broker', () => {
  const broker = new MemoryBroker();
  afterAll(() => broker.close());
  announcingStoreContract(() => ({
    store: new MemoryJobStore({ ttlS: 60, broker }),
    frames: async (jobId) => (await broker.history(`job:${jobId}`, 0)).events.map((e) => e.frame),
  }));
});
