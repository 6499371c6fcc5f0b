import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_S, type BrokerEvent } from '../src/broker.js';
import { MemoryBroker, newEpoch } from '../src/memory.js';

const brokers: MemoryBroker[] = [];
function broker(options?: ConstructorParameters<typeof MemoryBroker>[0]): MemoryBroker {
  const b = new MemoryBroker(options);
  brokers.push(b);
  return b;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

async function publishN(b: MemoryBroker, channel: string, n: number): Promise<BrokerEvent[]> {
  const out: BrokerEvent[] = [];
  for (let i = 0; i < n; i++) out.push(await b.publish({ channel, event: 'e', dataJson: JSON.stringify({ i }) }));
  return out;
}

describe('MemoryBroker publish', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_HISTORY_SIZE).toBe(1000);
    expect(DEFAULT_HISTORY_TTL_S).toBe(3600);
  });

  it('raises seq by exactly 1 per event, per channel', async () => {
    const b = broker();
    expect((await b.position('a')).seq).toBe(0);
    expect((await publishN(b, 'a', 5)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await publishN(b, 'b', 2)).map((e) => e.seq)).toEqual([1, 2]);
    expect((await publishN(b, 'a', 1))[0]!.seq).toBe(6);
    expect((await b.position('a')).seq).toBe(6);
    expect((await b.position('b')).seq).toBe(2);
  });

  it('serialises the wire event frame once', async () => {
    const b = broker();
    const before = Date.now();
    const e = await b.publish({ channel: 'dashboard', event: 'system.status', dataJson: '{"ok":true}' });
    expect(e.channel).toBe('dashboard');
    expect(e.publishedAt).toBeGreaterThanOrEqual(before);
    expect(JSON.parse(e.frame)).toEqual({
      type: 'event',
      channel: 'dashboard',
      seq: 1,
      event: 'system.status',
      data: { ok: true },
      timestamp: new Date(e.publishedAt).toISOString(),
    });
  });

  it('escapes event names in the frame', async () => {
    const b = broker();
    const e = await b.publish({ channel: 'c', event: 'say "hi"\n', dataJson: 'null' });
    expect(JSON.parse(e.frame)).toMatchObject({ event: 'say "hi"\n', data: null });
  });
});

describe('MemoryBroker history', () => {
  it('returns every event after since, oldest first, recovered', async () => {
    const b = broker();
    const events = await publishN(b, 'c', 5);
    const page = await b.history('c', 2);
    expect(page.seq).toBe(5);
    expect(page.recovered).toBe(true);
    expect(page.events.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(page.events).toEqual(events.slice(2));
    expect((await b.history('c', 0)).events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('is empty and recovered when since is the latest seq', async () => {
    const b = broker();
    await publishN(b, 'c', 3);
    expect(await b.history('c', 3)).toMatchObject({ seq: 3, events: [], recovered: true });
    expect(await b.history('fresh', 0)).toMatchObject({ seq: 0, events: [], recovered: true });
  });

  it('is not recovered when since is ahead of the channel (another epoch)', async () => {
    const b = broker();
    await publishN(b, 'c', 3);
    expect(await b.history('c', 10)).toMatchObject({ seq: 3, events: [], recovered: false });
  });

  it('keeps only the last HISTORY_SIZE events: older since is not recovered', async () => {
    const b = broker({ historySize: 5 });
    await publishN(b, 'c', 12);
    const old = await b.history('c', 0);
    expect(old.recovered).toBe(false);
    expect(old.events.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    expect((await b.history('c', 6)).recovered).toBe(false);
    const edge = await b.history('c', 7);
    expect(edge.recovered).toBe(true);
    expect(edge.events.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    const recent = await b.history('c', 10);
    expect(recent.recovered).toBe(true);
    expect(recent.events.map((e) => e.seq)).toEqual([11, 12]);
  });

  it('keeps nothing with HISTORY_SIZE 0, but seqs still rise', async () => {
    const b = broker({ historySize: 0 });
    await publishN(b, 'c', 3);
    expect(await b.history('c', 1)).toMatchObject({ seq: 3, events: [], recovered: false });
    expect(await b.history('c', 3)).toMatchObject({ seq: 3, events: [], recovered: true });
  });

  it('keeps one epoch while the history lives', async () => {
    const b = broker();
    const { epoch } = await b.position('c');
    expect(epoch).toMatch(/^[A-Za-z0-9_-]+$/);
    await publishN(b, 'c', 3);
    expect((await b.position('c')).epoch).toBe(epoch);
    expect((await b.history('c', 0)).epoch).toBe(epoch);
    expect((await b.position('other')).epoch).not.toBe(epoch);
  });

  it('starts a channel over in a new epoch when its history expires', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-23T12:00:00Z') });
    const b = broker({ historyTtlS: 60 });
    await publishN(b, 'c', 3);
    const { epoch } = await b.position('c');
    vi.setSystemTime(Date.now() + 59_000);
    expect(await b.position('c')).toEqual({ seq: 3, epoch });
    // Each event restarts the TTL.
    await publishN(b, 'c', 1);
    vi.setSystemTime(Date.now() + 59_000);
    expect((await b.position('c')).seq).toBe(4);
    vi.setSystemTime(Date.now() + 2_000);
    const after = await b.position('c');
    expect(after.seq).toBe(0);
    expect(after.epoch).not.toBe(epoch);
    expect(await b.history('c', 4)).toMatchObject({ seq: 0, recovered: false, events: [] });
    expect((await publishN(b, 'c', 1))[0]!.seq).toBe(1);
  });

  it('makes distinct epochs', () => {
    const seen = new Set(Array.from({ length: 100 }, () => newEpoch()));
    expect(seen.size).toBe(100);
  });
});

describe('MemoryBroker delivery', () => {
  it('hands the listener events only of channels it subscribed to', async () => {
    const b = broker();
    const got: BrokerEvent[] = [];
    b.setListener((e) => got.push(e));
    await b.publish({ channel: 'a', event: 'e', dataJson: '1' });
    await b.subscribe('a');
    await b.publish({ channel: 'a', event: 'e', dataJson: '2' });
    await b.publish({ channel: 'b', event: 'e', dataJson: '3' });
    expect(got.map((e) => [e.channel, e.seq])).toEqual([['a', 2]]);
  });

  it('counts references: delivery stops after the last unsubscribe', async () => {
    const b = broker();
    const got: number[] = [];
    b.setListener((e) => got.push(e.seq));
    await b.subscribe('a');
    await b.subscribe('a');
    b.unsubscribe('a');
    await b.publish({ channel: 'a', event: 'e', dataJson: '1' });
    b.unsubscribe('a');
    await b.publish({ channel: 'a', event: 'e', dataJson: '2' });
    expect(got).toEqual([1]);
    // Extra unsubscribes do not drive the count below zero.
    b.unsubscribe('a');
    b.unsubscribe('a');
    await b.subscribe('a');
    await b.publish({ channel: 'a', event: 'e', dataJson: '3' });
    expect(got).toEqual([1, 3]);
  });

  it('replaces the listener with setListener', async () => {
    const b = broker();
    const first: number[] = [];
    const second: number[] = [];
    await b.subscribe('a');
    b.setListener((e) => first.push(e.seq));
    await b.publish({ channel: 'a', event: 'e', dataJson: '1' });
    b.setListener((e) => second.push(e.seq));
    await b.publish({ channel: 'a', event: 'e', dataJson: '2' });
    expect(first).toEqual([1]);
    expect(second).toEqual([2]);
  });

  it('reports itself healthy and counts channels', async () => {
    const b = broker();
    expect(b.kind).toBe('memory');
    expect(b.health()).toEqual({ healthy: true, status: 'ok', latencyMs: 0 });
    await publishN(b, 'a', 1);
    await publishN(b, 'b', 1);
    expect(b.channelCount).toBe(2);
  });
});

describe('MemoryBroker close', () => {
  it('is idempotent and refuses publishing afterwards', async () => {
    const b = broker();
    await publishN(b, 'a', 2);
    await b.close();
    await expect(b.close()).resolves.toBeUndefined();
    await expect(b.publish({ channel: 'a', event: 'e', dataJson: '1' })).rejects.toThrow(/closed/);
    expect(b.channelCount).toBe(0);
  });
});
