import type { BrokerEvent, HistoryPage } from '@switchyard/broker';
import { describe, expect, it } from 'vitest';
import { FIRST_PAGE_EVENTS, ReplayBudget, ReplayGate, Replayer, rewindSeq } from '../src/replay.js';

function history(n: number, bytes = 100): (since: number, limit: number) => Promise<HistoryPage> {
  const events: BrokerEvent[] = Array.from({ length: n }, (_, i) => ({ channel: 'c', seq: i + 1, frame: 'x'.repeat(bytes), publishedAt: 0 }));
  return async (since, limit) => ({ seq: n, epoch: 'e', recovered: true, events: events.filter((e) => e.seq > since).slice(0, limit) });
}

describe('ReplayBudget', () => {
  it('holds bytes up to its limit, queues the rest in order, and lets one oversize page through alone', async () => {
    const budget = new ReplayBudget(100);
    const a = await budget.acquire(60);
    let bGranted = false;
    const b = budget.acquire(60).then((h) => ((bGranted = true), h));
    await new Promise((r) => setImmediate(r));
    expect(bGranted).toBe(false);
    a.release();
    a.release();
    (await b).resize(500);
    expect(budget.inFlight).toBe(500);
    (await b).release();
    expect(budget.inFlight).toBe(0);
    const huge = await budget.acquire(1000);
    expect(budget.inFlight).toBe(1000);
    huge.release();
  });
});

describe('Replayer', () => {
  it('sends the rest in pages while the client has room, in order, without a gap', async () => {
    const replayer = new Replayer(new ReplayBudget(1 << 20), 1000);
    const read = history(300);
    const first = await replayer.firstPage(read, 0);
    expect(first.events).toHaveLength(FIRST_PAGE_EVENTS);
    expect(Replayer.hasMore(first, FIRST_PAGE_EVENTS)).toBe(true);
    const sent: number[] = first.events.map((e) => e.seq);
    let pages = 0;
    const out = await replayer.rest(read, { gate: new ReplayGate(), room: () => true, alive: () => true, send: (events) => (pages++, sent.push(...events.map((e) => e.seq))) }, FIRST_PAGE_EVENTS, 300, 'e', 100);
    expect(out).toEqual({ last: 300, complete: true, gap: false });
    expect(sent).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(pages).toBeGreaterThan(0);
  });

  it('waits while the client has no room, and stops when the subscription ends', async () => {
    const replayer = new Replayer(new ReplayBudget(1 << 20), 1000);
    const gate = new ReplayGate();
    const room = false;
    let alive = true;
    const sent: number[] = [];
    const done = replayer.rest(history(100), { gate, room: () => room, alive: () => alive, send: (events) => sent.push(...events.map((e) => e.seq)) }, 8, 100, 'e', 100);
    await new Promise((r) => setImmediate(r));
    expect(gate.waiting).toBe(true);
    expect(gate.stalledSince).toBeTypeOf('number');
    expect(sent).toEqual([]);
    alive = false;
    gate.wake();
    expect(await done).toEqual({ last: 8, complete: false, gap: false });
    expect(sent).toEqual([]);
  });
});

describe('rewindSeq', () => {
  it('moves back past the newest events covering what was buffered, reading only that far', async () => {
    const reads: [number, number][] = [];
    const base = history(1000, 100);
    const read = (since: number, limit: number) => (reads.push([since, limit]), base(since, limit));
    expect(await rewindSeq(read, 900, 250)).toBe(897);
    expect(reads).toEqual([[836, 64]]);
    expect(await rewindSeq(read, 900, 0)).toBe(900);
    // Far back: several windows, never past 1000 events.
    expect(await rewindSeq(read, 1000, 10_000)).toBe(900);
    expect(await rewindSeq(read, 1000, 1e9)).toBe(0);
  });
});
