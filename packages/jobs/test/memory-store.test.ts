import { describe } from 'vitest';
import { MemoryJobStore } from '../src/index.js';
import { jobStoreContract } from './store-contract.js';

describe('MemoryJobStore', () => {
  jobStoreContract(() => new MemoryJobStore({ ttlS: 60 }));
});
