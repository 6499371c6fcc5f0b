import { describe, expect, it } from 'vitest';
import { ChannelStream, type ChannelEvent } from '../src/stream.js';

const ev = (seq: number | null, channel = 'c'): ChannelEvent => ({ id: `e1:${String(seq)}`, channel, seq, event: 'e', data: { seq }, timestamp: '2026-01-01T00:00:00.000Z', degraded: seq === null, coalesced: 0 });
const seqs = (events: ChannelEvent[]) => events.map((e) => e.seq);

/** Pushes events and collects what the stream hands over, and whether it asked for a fill. */
function feed(stream: ChannelStream, list: number[]): { out: (number | null)[]; fill: boolean } {
  const out: (number | null)[] = [];
  let fill = false;
  for (const s of list) {
    const r = stream.push(ev(s));
    out.push(...seqs(r.deliver));
    fill ||= r.needFill;
  }
  return { out, fill };
}

describe('ChannelStream', () => {
  it('starts after the subscription_result seq and hands over events in order', () => {
    const s = new ChannelStream('c');
    expect(s.onSubscribed({ seq: 10, epoch: 'E', recovered: undefined }, undefined)).toEqual({ needFill: false });
    expect(s.lastSeq).toBe(10);
    expect(feed(s, [9, 10, 11, 12])).toEqual({ out: [11, 12], fill: false });
    expect(s.resumeFrom).toBe(12);
  });

  it('after a snapshot, takes the events that follow it: without `since`, from the snapshot back to the latest', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 10, epoch: 'E', recovered: undefined }, undefined);
    // The server sends the snapshot as of seq 7, then history 8..10, then live events.
    expect(s.onSnapshot(7, 'E')).toEqual({ deliver: [], needFill: false });
    expect(feed(s, [8, 9, 10, 11])).toEqual({ out: [8, 9, 10, 11], fill: false });
  });

  it('after a snapshot, with `since`, continues from the further of the two', () => {
    const behind = new ChannelStream('c', { since: 2 });
    behind.onSubscribed({ seq: 9, epoch: 'E', recovered: true }, 2);
    behind.onSnapshot(6, 'E');
    expect(feed(behind, [7, 8, 9])).toEqual({ out: [7, 8, 9], fill: false });

    const ahead = new ChannelStream('c', { since: 8 });
    ahead.onSubscribed({ seq: 9, epoch: 'E', recovered: true }, 8);
    ahead.onSnapshot(6, 'E');
    expect(feed(ahead, [9])).toEqual({ out: [9], fill: false });
  });

  it('after a snapshot from a new epoch, starts from it', () => {
    const s = new ChannelStream('c', { since: 40 });
    s.onSubscribed({ seq: 41, epoch: 'E1', recovered: true }, 40);
    s.onSnapshot(0, 'E2');
    expect(s.epoch).toBe('E2');
    expect(feed(s, [1, 2])).toEqual({ out: [1, 2], fill: false });
  });

  it('starts after `since` when a replay was asked for', () => {
    const s = new ChannelStream('c', { since: 0 });
    s.onSubscribed({ seq: 3, epoch: 'E', recovered: true }, 0);
    expect(feed(s, [1, 2, 3, 4])).toEqual({ out: [1, 2, 3, 4], fill: false });
  });

  it('drops duplicates from a replay after a resume', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [1, 2, 3, 4, 5]);
    // The server replays from an older position: 3..7.
    s.onSubscribed({ seq: 7, epoch: 'E', recovered: true }, 3);
    expect(feed(s, [3, 4, 5, 6, 7])).toEqual({ out: [6, 7], fill: false });
  });

  it('holds back early events, asks for a fill, and releases them in order once the gap is filled', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    expect(feed(s, [1, 2])).toEqual({ out: [1, 2], fill: false });
    expect(feed(s, [5, 4, 6])).toEqual({ out: [], fill: true });
    expect(s.buffered).toBe(3);
    // The fill's replay from 2: 3, then 4..6 again (duplicates of buffered ones).
    s.onSubscribed({ seq: 6, epoch: 'E', recovered: true }, 2);
    expect(feed(s, [3])).toEqual({ out: [3, 4, 5, 6], fill: false });
    expect(feed(s, [4, 5, 6, 7])).toEqual({ out: [7], fill: false });
    expect(s.buffered).toBe(0);
  });

  it('asks for a fill when a server-started resume is ahead of what arrived', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [1, 2, 3]);
    // Unsolicited (since undefined): the channel is at 5 but we saw 3.
    expect(s.onSubscribed({ seq: 5, epoch: 'E', recovered: true }, undefined)).toEqual({ needFill: true });
    expect(s.resumeFrom).toBe(3);
    // Not when nothing moved.
    expect(s.onSubscribed({ seq: 3, epoch: 'E', recovered: true }, undefined)).toEqual({ needFill: false });
  });

  it('reports a gap on recovered:false and goes on from the next event', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [1, 2]);
    feed(s, [9]); // buffered, fill asked
    const r = s.onSubscribed({ seq: 20, epoch: 'E', recovered: false }, 2);
    expect(r.signal).toEqual({ kind: 'gap', channel: 'c', lastSeq: 2, seq: 20, epoch: 'E' });
    expect(s.buffered).toBe(0);
    // History held 17..20 only.
    expect(feed(s, [17, 18, 19, 20, 21])).toEqual({ out: [17, 18, 19, 20, 21], fill: false });
  });

  it('reports a reset when the epoch changes and restarts from the new seqs', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 40, epoch: 'old', recovered: undefined }, undefined);
    feed(s, [41, 42]);
    const r = s.onSubscribed({ seq: 1, epoch: 'new', recovered: false }, undefined);
    expect(r.signal).toEqual({ kind: 'reset', channel: 'c', lastSeq: 42, seq: 1, epoch: 'new' });
    expect(s.lastSeq).toBeUndefined();
    expect(s.resumeFrom).toBe(1);
    expect(feed(s, [1, 2, 3])).toEqual({ out: [1, 2, 3], fill: false });
    expect(s.epoch).toBe('new');
  });

  it('hands degraded events (no seq) over as they come, outside the ordering', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    const r = s.push(ev(null));
    expect(seqs(r.deliver)).toEqual([null]);
    expect(feed(s, [1])).toEqual({ out: [1], fill: false });
  });

  it('bounds the out-of-order buffer and keeps asking for a fill', () => {
    const s = new ChannelStream('c', { maxBuffered: 3 });
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    const r = feed(s, [2, 3, 4, 5, 6, 7, 8]);
    expect(r).toEqual({ out: [], fill: true });
    expect(s.buffered).toBeLessThanOrEqual(3);
    // The replay brings everything again.
    s.onSubscribed({ seq: 8, epoch: 'E', recovered: true }, 0);
    expect(feed(s, [1, 2, 3, 4, 5, 6, 7, 8])).toEqual({ out: [1, 2, 3, 4, 5, 6, 7, 8], fill: false });
  });

  it('accepts seqs the server coalesced away for a slow client, once an event announces them', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [1, 2]);
    // 3 and 4 were job.progress events replaced by 6 (coalesced: 2); 5 is a job.retrying kept in order.
    expect(feed(s, [5])).toEqual({ out: [], fill: true });
    expect(s.waiting).toBe(true);
    const r = s.push({ ...ev(6), coalesced: 2 });
    expect(seqs(r.deliver)).toEqual([5, 6]);
    expect(r.needFill).toBe(false);
    expect(s.waiting).toBe(false);
    expect(s.lastSeq).toBe(6);
    expect(feed(s, [7])).toEqual({ out: [7], fill: false });
  });

  it('does not let an announcement explain more than it says, nor seqs above its own event', () => {
    const s = new ChannelStream('c');
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [1]);
    // Three missing (2, 3, 4) but only one announced: keep waiting (a fill will come).
    const r = s.push({ ...ev(5), coalesced: 1 });
    expect(r).toEqual({ deliver: [], needFill: true });
    // An in-order coalesced event's announcement lapses at once: it cannot hide a later gap.
    const t = new ChannelStream('c');
    t.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    expect(seqs(t.push({ ...ev(1), coalesced: 3 }).deliver)).toEqual([1]);
    expect(feed(t, [3])).toEqual({ out: [], fill: true });
  });

  it('says it is waiting after its buffer overflowed, until a replay starts it again', () => {
    const s = new ChannelStream('c', { maxBuffered: 2 });
    s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
    feed(s, [3, 4, 5]);
    expect(s.buffered).toBe(0);
    expect(s.waiting).toBe(true);
    s.onSubscribed({ seq: 5, epoch: 'E', recovered: true }, 0);
    expect(s.waiting).toBe(false);
  });

  it('delivers 1..N exactly once and in order whatever the duplication and reordering (simulated replays)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647);
    for (let round = 0; round < 50; round++) {
      const N = 200;
      const s = new ChannelStream('c', { maxBuffered: 20 });
      s.onSubscribed({ seq: 0, epoch: 'E', recovered: undefined }, undefined);
      const delivered: number[] = [];
      let cursor = 0; // how far the "server" has sent live
      let fills = 0;
      for (let step = 0; step < 10_000 && delivered.length < N; step++) {
        // Mostly in order; sometimes skip ahead (an event lost in a crash), repeat, or swap.
        const roll = rnd();
        let batch: number[];
        if (roll < 0.1 && cursor + 2 <= N) batch = [cursor + 2];
        else if (roll < 0.2 && cursor > 3) batch = [cursor - 2, cursor - 1];
        else if (roll < 0.3 && cursor + 2 <= N) batch = [cursor + 2, cursor + 1];
        else batch = cursor < N ? [cursor + 1] : [];
        cursor = Math.min(N, Math.max(cursor, ...batch));
        let needFill = false;
        for (const seq of batch) {
          const r = s.push(ev(seq));
          delivered.push(...(seqs(r.deliver) as number[]));
          needFill ||= r.needFill;
        }
        if (needFill || (cursor === N && delivered.length < N)) {
          // The fill: a replay from resumeFrom up to what has been published.
          fills++;
          const since = s.resumeFrom!;
          s.onSubscribed({ seq: cursor, epoch: 'E', recovered: true }, since);
          for (let q = since + 1; q <= cursor; q++) delivered.push(...(seqs(s.push(ev(q)).deliver) as number[]));
        }
      }
      expect(delivered).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(fills).toBeGreaterThan(0);
    }
  });
});
