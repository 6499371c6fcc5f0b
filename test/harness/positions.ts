import { waitFor } from './ports.js';

/** Anything that runs redis-cli against the store the edges use (RedisServer, RedisCluster). */
export interface RedisCli {
  cli(...args: string[]): string;
}

/** The seq a node has recorded in Redis as delivered on a channel (its `sy:node:<id>:pos` hash), if any. */
export function recordedSeq(redis: RedisCli, workerId: string, channel: string): number | undefined {
  const raw = redis.cli('hget', `sy:node:${workerId}:pos`, channel).trim();
  const seq = Number(raw.slice(0, raw.indexOf(':')));
  return raw.includes(':') && Number.isInteger(seq) ? seq : undefined;
}

/**
 * Waits until node `workerId` has recorded delivering `seq` (or later) on `channel`. A node
 * batches these positions; a test that kills it and then expects an exact replay must first see
 * the batch land, not guess how long it takes.
 */
export function waitForRecordedSeq(redis: RedisCli, workerId: string, channel: string, seq: number, timeoutMs = 10_000): Promise<number> {
  return waitFor(
    () => {
      const at = recordedSeq(redis, workerId, channel);
      return at !== undefined && at >= seq ? at : undefined;
    },
    timeoutMs,
    `node ${workerId} to record seq ${seq} on ${channel} in Redis`,
  );
}
