import type { BrokerEvent } from '@switchyard/broker';
import { encodeEvent } from '@switchyard/protocol';
import { describe, expect, it } from 'vitest';
import type { Connection, JoinState } from '../src/connection.js';
import { Hub, type Streams } from '../src/hub.js';
import { FakeTopics, readyClient, services, testConfig, until } from './fakes.js';

function event(channel: string, seq: number, coalesce?: string): BrokerEvent {
  return { channel, seq, frame: encodeEvent(channel, seq, 'e', JSON.stringify({ n: seq }), Date.now(), coalesce), publishedAt: Date.now() };
}

class FakeStreams implements Streams {
  readonly delivered: BrokerEvent[] = [];
  readonly published: [string, string][] = [];
  deliver(e: BrokerEvent): number {
    this.delivered.push(e);
    return 1;
  }
  publish(channel: string, frame: string): void {
    this.published.push([channel, frame]);
  }
}

function setup(overrides = {}) {
  const s = services(testConfig({ maxBackpressureBytes: 100_000, coalesceBytes: 10_000, ...overrides }));
  const noted: [string, number][] = [];
  const forgotten: string[] = [];
  s.registry.notePosition = (channel, position) => void noted.push([channel, position.seq]);
  s.registry.forgetPosition = (channel) => void forgotten.push(channel);
  const completed: [Connection, string, JoinState][] = [];
  const hub = new Hub(s, (conn, channel, join) => completed.push([conn, channel, join]));
  const topics = new FakeTopics();
  const streams = new FakeStreams();
  hub.open(topics, streams);
  const client = (sub = 'u1') => {
    const c = readyClient(topics, sub);
    s.conns.add(c.conn);
    return c;
  };
  const member = (conn: Connection, channel: string, at = 0) => {
    hub.attach(conn, channel, at, 'ep');
    conn.subscriptions.add(channel);
  };
  return { ...s, hub, topics, streams, client, member, noted, forgotten, completed };
}


describe('Hub', () => {
  it('delivers nothing before it is opened', () => {
    const s = services();
    const hub = new Hub(s, () => undefined);
    expect(() => hub.deliver(event('a', 1))).not.toThrow();
    expect(hub.channels).toBe(0);
  });

  it('hands one event to the topic once, to SSE streams, and moves the channel position on', () => {
    const t = setup();
    const a = t.client('u1');
    const b = t.client('u2');
    t.member(a.conn, 'room', 0);
    t.member(b.conn, 'room', 0);
    t.hub.deliver(event('room', 1));
    expect(t.topics.published).toBe(1);
    expect(a.socket.seqs()).toEqual([1]);
    expect(b.socket.seqs()).toEqual([1]);
    expect(t.streams.delivered.map((e) => e.seq)).toEqual([1]);
    expect(t.hub.positionOf('room')).toEqual({ seq: 1, epoch: 'ep' });
    expect(t.noted).toEqual([['room', 1]]);
    expect([...t.hub.channelCounts()]).toEqual([{ channel: 'room', subscribers: 2, seq: 1 }]);
  });

  it('does not publish to a topic nobody holds, and records no position for a channel without members', () => {
    const t = setup();
    t.hub.deliver(event('empty', 7));
    expect(t.topics.published).toBe(0);
    expect(t.hub.positionOf('empty')).toBeUndefined();
    expect(t.noted).toEqual([]);
  });

  it('keeps the furthest position when a later joiner was sent less', () => {
    const t = setup();
    const a = t.client('u1');
    const b = t.client('u2');
    t.member(a.conn, 'room', 10);
    t.member(b.conn, 'room', 4);
    expect(t.hub.positionOf('room')?.seq).toBe(10);
  });

  it('buffers events for a joining connection and completes a waiting join once the live stream reaches it', () => {
    const t = setup();
    const { conn } = t.client();
    const join: JoinState = { buffer: [], bufferBytes: 0, overflowed: false };
    conn.joinMap().set('room', join);
    const joiners = t.hub.addJoiner('room', conn);
    t.hub.deliver(event('room', 1));
    expect(join.buffer.map((e) => e.seq)).toEqual([1]);
    expect(join.bufferBytes).toBe(join.buffer[0]!.frame.length);
    expect(t.completed).toHaveLength(0);
    join.waiting = { sent: 3, epoch: 'ep' };
    t.hub.deliver(event('room', 2));
    expect(t.completed).toHaveLength(0);
    t.hub.deliver(event('room', 3));
    expect(t.completed.map(([, channel]) => channel)).toEqual(['room']);
    t.hub.releaseJoiner('room', conn, joiners);
    t.hub.deliver(event('room', 4));
    expect(join.buffer).toHaveLength(3);
  });

  it('releases a joiner set only while it is still the channel’s', () => {
    const t = setup();
    const a = t.client('u1');
    const b = t.client('u2');
    a.conn.joinMap().set('room', { buffer: [], bufferBytes: 0, overflowed: false });
    const first = t.hub.addJoiner('room', a.conn);
    t.hub.removeJoiner('room', a.conn);
    const joinB: JoinState = { buffer: [], bufferBytes: 0, overflowed: false };
    b.conn.joinMap().set('room', joinB);
    t.hub.addJoiner('room', b.conn);
    t.hub.releaseJoiner('room', a.conn, first);
    t.hub.deliver(event('room', 1));
    expect(joinB.buffer).toHaveLength(1);
  });

  it('closes 4010 a joiner whose buffered events push it over MAX_BACKPRESSURE_BYTES', () => {
    const t = setup({ maxBackpressureBytes: 2000, coalesceBytes: 100 });
    const { conn, socket } = t.client();
    conn.joinMap().set('room', { buffer: [], bufferBytes: 0, overflowed: false });
    t.hub.addJoiner('room', conn);
    for (let seq = 1; seq <= 40 && socket.ended === undefined; seq++) t.hub.deliver(event('room', seq));
    expect(socket.ended).toEqual({ code: 4010, reason: 'slow_consumer' });
  });

  it('sends presence signals to topic, slow members and streams, and never to joiners', () => {
    const t = setup();
    const a = t.client('u1');
    const j = t.client('u2');
    t.member(a.conn, 'room');
    j.conn.joinMap().set('room', { buffer: [], bufferBytes: 0, overflowed: false });
    t.hub.addJoiner('room', j.conn);
    t.hub.signal('room', '{"type":"presence_join"}');
    expect(a.socket.sent).toEqual(['{"type":"presence_join"}']);
    expect(j.socket.sent).toEqual([]);
    expect(j.conn.joining.get('room')!.buffer).toEqual([]);
    expect(t.streams.published).toEqual([['room', '{"type":"presence_join"}']]);
  });

  it('tells every subscriber of a reset channel recovered:false and rewinds its position', () => {
    const t = setup();
    const a = t.client();
    t.member(a.conn, 'room', 5);
    t.hub.announceReset('room', { seq: 1, epoch: 'new' });
    expect(a.socket.frames('subscription_result')).toEqual([{ type: 'subscription_result', channel: 'room', success: true, seq: 1, epoch: 'new', recovered: false }]);
    expect(t.hub.positionOf('room')).toEqual({ seq: 0, epoch: 'new' });
    expect(t.streams.published).toHaveLength(1);
  });

  it('publishes a degraded local event to topic subscribers only', () => {
    const t = setup();
    const a = t.client();
    t.member(a.conn, 'room');
    t.hub.publishLocal('room', '{"type":"event"}');
    t.hub.publishLocal('nobody', '{"type":"event"}');
    expect(a.socket.sent).toEqual(['{"type":"event"}']);
    expect(t.topics.published).toBe(1);
  });

  it('forgets a channel’s position when its last member leaves, and not before', () => {
    const t = setup();
    const a = t.client('u1');
    const b = t.client('u2');
    t.member(a.conn, 'room', 3);
    t.member(b.conn, 'room', 3);
    a.conn.subscriptions.delete('room');
    t.hub.detach(a.conn, 'room');
    expect(a.socket.topics.has('room')).toBe(false);
    expect(t.hub.positionOf('room')).toBeDefined();
    b.conn.state = 'closed';
    t.hub.dropConnection(b.conn);
    expect(t.hub.positionOf('room')).toBeUndefined();
    expect(t.forgotten).toEqual(['room']);
  });

  it('moves a client that falls behind on a coalescable channel to its slow lane, coalesces there, and back to the topic once drained', async () => {
    const t = setup();
    const fast = t.client('u1');
    const slow = t.client('u2');
    t.member(fast.conn, 'job:1');
    t.member(slow.conn, 'job:1');
    slow.socket.buffered = 50_000;
    t.hub.deliver(event('job:1', 1, 'progress'));
    expect(slow.conn.lane).toBeDefined();
    // The switch happens on the next turn (uWS drops a same-turn publish to a leaving socket).
    await until(() => !slow.socket.topics.has('job:1'));
    t.hub.deliver(event('job:1', 2, 'progress'));
    t.hub.deliver(event('job:1', 3, 'progress'));
    expect(fast.socket.seqs()).toEqual([1, 2, 3]);
    expect(slow.socket.seqs()).toEqual([1]);
    slow.socket.buffered = 0;
    t.hub.flushSlowLane(slow.conn);
    // Only the newest event of the coalesce key survives the lane.
    expect(slow.socket.seqs()).toEqual([1, 3]);
    expect(slow.conn.lane).toBeUndefined();
    expect(slow.socket.topics.has('job:1')).toBe(true);
    t.hub.deliver(event('job:1', 4, 'progress'));
    expect(slow.socket.seqs()).toEqual([1, 3, 4]);
  });

  it('sweeps: closes 4010 past MAX_BACKPRESSURE_BYTES, moves a backlog past COALESCE_BYTES to a lane', () => {
    const t = setup();
    const over = t.client('u1');
    const behind = t.client('u2');
    const fine = t.client('u3');
    for (const c of [over, behind, fine]) t.member(c.conn, 'room');
    over.socket.buffered = 200_000;
    behind.socket.buffered = 20_000;
    t.hub.pressureSweep();
    expect(over.socket.ended?.code).toBe(4010);
    expect(behind.conn.lane).toBeDefined();
    expect(behind.socket.ended).toBeUndefined();
    expect(fine.conn.lane).toBeUndefined();
  });
});
