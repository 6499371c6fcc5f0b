import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';

const PROGRESS = 10_000;
const PAD = 'x'.repeat(600);

/** Publishes in windows of `window` outstanding frames, so the publisher itself never floods. */
async function publishAll(client: TestClient, frames: Record<string, unknown>[], window = 200): Promise<void> {
  for (let i = 0; i < frames.length; i += window) {
    const batch = frames.slice(i, i + window).map((f, j) => ({ ...f, ref: `p${i + j}` }));
    for (const f of batch) client.send(f);
    await client.next((f) => f['ref'] === batch[batch.length - 1]!['ref'], 15_000);
  }
}

function events(client: TestClient, channel: string): Frame[] {
  return client.frames.filter((f) => f.type === 'event' && f['channel'] === channel);
}

describe('coalescing instead of dropping', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({
      MAX_BACKPRESSURE_BYTES: String(4 * 1024 * 1024),
      COALESCE_BYTES: String(64 * 1024),
      BACKPRESSURE_CHECK_MS: '20',
      RATE_LIMIT_PER_S: '100000',
      RATE_LIMIT_BURST: '100000',
      USER_RATE_LIMIT_PER_S: '100000',
    });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('a slow reader gets the latest progress and every other event, never closed, coalesced counts add up', async () => {
    const channel = 'job:coalesce-1';
    const reader = await hsToken({ sub: 'slow', channels: ['job:*'] });
    const { client: slow } = await connect(edge.url, reader);
    const { client: fast } = await connect(edge.url, await hsToken({ sub: 'fast', channels: ['job:*'] }));
    const { client: pub } = await connect(edge.url, await hsToken({ sub: 'runner', publish: ['job:*'] }));
    await slow.request({ type: 'subscribe', channel });
    await fast.request({ type: 'subscribe', channel });
    slow.ws.pause();

    const frames: Record<string, unknown>[] = [];
    for (let i = 1; i <= PROGRESS; i++) {
      frames.push({ type: 'publish', channel, event: 'job.progress', data: { progress: i / PROGRESS, pad: PAD } });
      if (i % 1000 === 0) frames.push({ type: 'publish', channel, event: 'job.stage', data: { stage: i / 1000 } });
    }
    frames.push({ type: 'publish', channel, event: 'job.completed', data: { result: 'ok' } });
    await publishAll(pub, frames);

    slow.ws.resume();
    await slow.next((f) => f.type === 'event' && f['event'] === 'job.completed', 30_000);
    await fast.next((f) => f.type === 'event' && f['event'] === 'job.completed', 30_000);

    for (const client of [slow, fast]) {
      const got = events(client, channel);
      const seqs = got.map((f) => f['seq'] as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      // Every event that may not be coalesced arrives; progress events account for all of theirs.
      expect(got.filter((f) => f['event'] === 'job.stage').map((f) => (f['data'] as { stage: number }).stage)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(got.filter((f) => f['event'] === 'job.completed')).toHaveLength(1);
      const progress = got.filter((f) => f['event'] === 'job.progress');
      expect(progress.reduce((sum, f) => sum + 1 + ((f['coalesced'] as number | undefined) ?? 0), 0)).toBe(PROGRESS);
      expect((progress[progress.length - 1]!['data'] as { progress: number }).progress).toBe(1);
      // Every seq gap is explained: what was received plus what it says it replaced is all that was published.
      const last = seqs[seqs.length - 1]!;
      const explained = got.reduce((sum, f) => sum + 1 + ((f['coalesced'] as number | undefined) ?? 0), 0);
      expect(explained).toBe(last - seqs[0]! + 1);
    }
    const slowProgress = events(slow, channel).filter((f) => f['event'] === 'job.progress');
    expect(slowProgress.length).toBeLessThan(PROGRESS);
    expect(slow.ws.readyState).toBe(slow.ws.OPEN);
    // Back on the native fan-out once drained: a later event arrives as usual.
    await pub.request({ type: 'publish', channel, event: 'job.note', data: 'after' });
    expect(await slow.next((f) => f['event'] === 'job.note')).toMatchObject({ data: 'after' });
    for (const c of [slow, fast, pub]) c.close();
  }, 120_000);

  it('coalesces any publish marked with a key, per key, and keeps unmarked ones', async () => {
    const channel = 'dash:prices';
    const { client: slow } = await connect(edge.url, await hsToken({ sub: 'viewer', channels: ['dash:*'] }));
    const { client: pub } = await connect(edge.url, await hsToken({ sub: 'feed', publish: ['dash:*'] }));
    await slow.request({ type: 'subscribe', channel });
    slow.ws.pause();
    const frames: Record<string, unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      frames.push({ type: 'publish', channel, event: 'tick', coalesce: i % 2 ? 'BTC' : 'ETH', data: { i, pad: PAD.repeat(5) } });
    }
    frames.push({ type: 'publish', channel, event: 'halt', data: { reason: 'close' } });
    await publishAll(pub, frames);
    slow.ws.resume();
    await slow.next((f) => f['event'] === 'halt', 30_000);
    const got = events(slow, channel);
    const ticks = got.filter((f) => f['event'] === 'tick');
    for (const key of ['BTC', 'ETH']) {
      const mine = ticks.filter((f) => f['coalesce'] === key);
      expect(mine.reduce((sum, f) => sum + 1 + ((f['coalesced'] as number | undefined) ?? 0), 0)).toBe(1500);
    }
    expect(ticks.length).toBeLessThan(3000);
    await waitFor(() => slow.ws.readyState === slow.ws.OPEN || undefined, 1000, 'still open');
    for (const c of [slow, pub]) c.close();
  }, 120_000);

  it('refuses a coalesce key that is not made of channel-name characters', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'bad', publish: ['dash:*'] }));
    expect(await client.request({ type: 'publish', channel: 'dash:x', coalesce: 'a"b', data: 1 })).toMatchObject({ type: 'error', code: 'bad_frame' });
    client.close();
  });
});
