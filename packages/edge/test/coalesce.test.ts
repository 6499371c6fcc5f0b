import { encodeEvent } from '@switchyard/protocol';
import { describe, expect, it } from 'vitest';
import { SlowLane, coalesceKey, withCoalesced } from '../src/coalesce.js';

const ev = (seq: number, event: string, data = '{}', coalesce?: string) => ({
  channel: 'job:1',
  seq,
  frame: encodeEvent('job:1', seq, event, data, 0, coalesce),
  publishedAt: 0,
});

describe('coalesceKey', () => {
  it('finds job.progress and explicit keys, and nothing in data can fake one', () => {
    expect(coalesceKey(ev(1, 'job.progress').frame)).toBe('job.progress');
    expect(coalesceKey(ev(1, 'tick', '{}', 'BTC').frame)).toBe('BTC');
    expect(coalesceKey(ev(1, 'job.completed').frame)).toBeUndefined();
    expect(coalesceKey(ev(1, 'x', '{"event":"job.progress","k":",\\"coalesce\\":\\"A\\"}"}').frame)).toBeUndefined();
  });
  it('withCoalesced adds the count as a field', () => {
    expect(JSON.parse(withCoalesced(ev(3, 'job.progress').frame, 2))).toMatchObject({ seq: 3, coalesced: 2 });
    expect(withCoalesced('{"a":1}', 0)).toBe('{"a":1}');
  });
});

describe('SlowLane', () => {
  it('keeps the latest per key, everything else in order, and counts what was replaced', () => {
    const lane = new SlowLane();
    lane.channels.set('job:1', 0);
    lane.enqueue(ev(1, 'job.progress'));
    lane.enqueue(ev(2, 'job.stage'));
    lane.enqueue(ev(3, 'job.progress'));
    lane.enqueue(ev(4, 'job.progress'));
    lane.enqueue(ev(5, 'job.completed'));
    const out: Record<string, unknown>[] = [];
    expect(lane.flush((f) => out.push(JSON.parse(f) as Record<string, unknown>), () => true)).toBe(true);
    expect(out.map((f) => [f['seq'], f['coalesced'] ?? 0])).toEqual([
      [2, 0],
      [4, 2],
      [5, 0],
    ]);
    expect(lane.position('job:1')).toBe(5);
  });
  it('ignores what the topic already delivered and stops when the socket is full', () => {
    const lane = new SlowLane();
    lane.channels.set('job:1', 2);
    lane.enqueue(ev(2, 'job.stage'));
    lane.enqueue(ev(3, 'job.stage'));
    lane.enqueue(ev(4, 'job.stage'));
    expect(lane.bytes).toBeGreaterThan(0);
    let budget = 1;
    const sent: number[] = [];
    expect(lane.flush((f) => sent.push((JSON.parse(f) as { seq: number }).seq), () => budget-- > 0)).toBe(false);
    expect(sent).toEqual([3]);
    expect(lane.position('job:1')).toBe(3);
    expect(lane.flush((f) => sent.push((JSON.parse(f) as { seq: number }).seq), () => true)).toBe(true);
    expect(sent).toEqual([3, 4]);
    expect(lane.bytes).toBe(0);
  });
  it('counts every frame it holds, each distinct coalesce key included; a superseded one is let go', () => {
    const lane = new SlowLane();
    lane.channels.set('job:1', 0);
    const one = ev(1, 'tick', '"x"', 'k1');
    lane.enqueue(one);
    lane.enqueue(ev(2, 'tick', '"x"', 'k2'));
    lane.enqueue(ev(3, 'tick', '"x"', 'k3'));
    expect(lane.bytes).toBe(3 * one.frame.length);
    lane.enqueue(ev(4, 'tick', '"x"', 'k1'));
    expect(lane.bytes).toBe(3 * one.frame.length);
    expect(lane.flush(() => undefined, () => true)).toBe(true);
    expect(lane.bytes).toBe(0);
  });
  it('sends nothing more for a channel that left the lane', () => {
    const lane = new SlowLane();
    lane.channels.set('job:1', 0);
    lane.enqueue(ev(1, 'job.stage'));
    lane.enqueue(ev(2, 'job.stage'));
    lane.channels.delete('job:1');
    const sent: string[] = [];
    expect(lane.flush((f) => sent.push(f), () => true)).toBe(true);
    expect(sent).toEqual([]);
    expect(lane.bytes).toBe(0);
  });
});
