import type { RedisBroker } from '@switchyard/broker';
import { recordFromHash, type JobRecord, type RawRecord } from './store.js';

type Client = RedisBroker['client'];

/** Most status hashes one `recent` call reads: a console must never make Redis scan for long. */
export const MAX_SCANNED_JOBS = 5000;
const SCAN_BATCH = 500;

/** Newest first, by last change (then creation); at most `limit`. */
export function newestFirst(records: Iterable<JobRecord>, limit: number): JobRecord[] {
  const stamp = (r: JobRecord) => r.updated_at ?? r.created_at ?? '';
  return [...records].sort((a, b) => (stamp(a) < stamp(b) ? 1 : stamp(a) > stamp(b) ? -1 : 0)).slice(0, Math.max(0, limit));
}

/**
 * The latest job statuses in Redis, for the operators' console. There is no job index to keep
 * in step with every transition script, so this walks the `job:*` hashes with SCAN (never
 * KEYS), on every master of a Redis Cluster, reading at most MAX_SCANNED_JOBS of them.
 */
export async function recentFromRedis(client: Client, limit: number, maxScanned = MAX_SCANNED_JOBS): Promise<JobRecord[]> {
  const withNodes = client as unknown as { nodes?: (role: 'master') => Client[] };
  const nodes = typeof withNodes.nodes === 'function' ? withNodes.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', 'job:*', 'COUNT', SCAN_BATCH, 'TYPE', 'hash');
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < maxScanned);
    if (keys.length >= maxScanned) break;
  }
  const records: JobRecord[] = [];
  // One HGETALL per key; ioredis batches them on its pipeline, and on a cluster each goes to its slot.
  const hashes = await Promise.all(keys.slice(0, maxScanned).map((k) => client.hgetall(k) as Promise<RawRecord>));
  for (const raw of hashes) {
    const record = recordFromHash(raw);
    if (record !== undefined) records.push(record);
  }
  return newestFirst(records, limit);
}
