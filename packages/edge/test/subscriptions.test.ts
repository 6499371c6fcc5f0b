import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/connection.js';
import { Hub } from '../src/hub.js';
import type { EdgePresence } from '../src/presence.js';
import { Subscriptions } from '../src/subscriptions.js';
import { FakeTopics, claimsFor, readyClient, services, testConfig, until } from './fakes.js';

function setup(overrides = {}) {
  const s = services(testConfig(overrides));
  const presence = { joined: (_c: Connection, channel: string) => joined.push(channel), left: (_c: Connection, channel: string) => left.push(channel), closed: () => undefined };
  const joined: string[] = [];
  const left: string[] = [];
  const ctx = { ...s, presence: presence as unknown as EdgePresence, jobs: undefined };
  let subs: Subscriptions | undefined;
  const hub = new Hub(ctx, (conn, channel, join) => subs!.completeJoin(conn, channel, join));
  subs = new Subscriptions(ctx, hub);
  const topics = new FakeTopics();
  hub.open(topics, undefined);
  s.broker.setListener((event) => hub.deliver(event));
  const publish = (channel: string, n = 1) => {
    for (let i = 0; i < n; i++) s.broker.publishSync({ channel, event: 'e', dataJson: '{}' });
  };
  return { ...s, hub, subs, topics, publish, joined, left };
}

describe('Subscriptions', () => {
  it('answers a plain subscribe with the channel position, then delivers live events once', async () => {
    const t = setup();
    t.publish('room', 3);
    const { conn, socket } = readyClient(t.topics);
    await t.subs.subscribe(conn, 'room', undefined, 'r1');
    expect(socket.frames()).toEqual([{ type: 'subscription_result', channel: 'room', success: true, seq: 3, epoch: expect.any(String), ref: 'r1' }]);
    expect(conn.subscriptions.has('room')).toBe(true);
    expect(conn.joining.size).toBe(0);
    expect(t.joined).toEqual(['room']);
    t.publish('room', 2);
    expect(socket.seqs()).toEqual([4, 5]);
  });

  it('replays after `since`, takes events published meanwhile from the join buffer, and sends none twice', async () => {
    const t = setup();
    t.publish('room', 5);
    const read = t.broker.history.bind(t.broker);
    let injected = false;
    t.broker.history = async (channel, since, limit) => {
      const page = await read(channel, since, limit);
      if (!injected) {
        injected = true;
        t.publish(channel);
      }
      return page;
    };
    const { conn, socket } = readyClient(t.topics);
    await t.subs.subscribe(conn, 'room', 2, undefined);
    const result = socket.frames('subscription_result')[0]!;
    expect(result).toMatchObject({ success: true, seq: 5, recovered: true });
    expect(socket.seqs()).toEqual([3, 4, 5, 6]);
    t.publish('room');
    expect(socket.seqs()).toEqual([3, 4, 5, 6, 7]);
  });

  it('refuses past MAX_SUBSCRIPTIONS_PER_CONNECTION and without the right to read', async () => {
    const t = setup({ maxSubscriptionsPerConnection: 1 });
    const { conn, socket } = readyClient(t.topics);
    conn.claims = claimsFor('u1', ['a', 'b']);
    await t.subs.subscribe(conn, 'a', undefined, undefined);
    await t.subs.subscribe(conn, 'b', undefined, undefined);
    await t.subs.subscribe(conn, 'a', undefined, undefined);
    const results = socket.frames('subscription_result');
    expect(results[1]).toEqual({ type: 'subscription_result', channel: 'b', success: false, error: 'too_many_subscriptions' });
    expect(results[2]).toMatchObject({ channel: 'a', success: true });
    const other = readyClient(t.topics, 'u2');
    other.conn.claims = claimsFor('u2', ['a']);
    await t.subs.subscribe(other.conn, 'secret', undefined, 'x');
    expect(other.socket.frames()).toEqual([{ type: 'subscription_result', channel: 'secret', success: false, error: 'forbidden', ref: 'x' }]);
  });

  it('unsubscribes: off the topic, out of the session, the channel forgotten, `unsubscribed` sent', async () => {
    const t = setup();
    const { conn, socket } = readyClient(t.topics);
    conn.session = { id: 's1', userId: 'u1', subscriptions: {} };
    await t.subs.subscribe(conn, 'room', undefined, undefined);
    expect(conn.session.subscriptions['room']).toBeDefined();
    expect(t.hub.positionOf('room')).toBeDefined();
    await t.subs.unsubscribe(conn, 'room', 'u');
    expect(socket.frames('unsubscribed')).toEqual([{ type: 'unsubscribed', channel: 'room', ref: 'u' }]);
    expect(socket.topics.has('room')).toBe(false);
    expect(conn.session.subscriptions['room']).toBeUndefined();
    expect(t.hub.positionOf('room')).toBeUndefined();
    expect(t.left).toEqual(['room']);
    t.publish('room');
    expect(socket.seqs()).toEqual([]);
  });

  it('an unsubscribe right behind a subscribe wins: the join sends nothing and keeps no broker interest', async () => {
    const t = setup();
    t.publish('room', 2);
    const { conn, socket } = readyClient(t.topics);
    // Holds the join at its broker subscribe, as a slow Redis would.
    const subscribe = t.broker.subscribe.bind(t.broker);
    let release = () => {};
    t.broker.subscribe = (channel) => new Promise<void>((resolve) => (release = () => void subscribe(channel).then(resolve)));
    const joining = t.subs.subscribe(conn, 'room', 0, undefined);
    await until(() => conn.joining.has('room'));
    expect(t.subs.leave(conn, 'room')).toBe(true);
    release();
    await joining;
    expect(socket.frames('subscription_result')).toEqual([]);
    expect(conn.subscriptions.size + conn.joining.size).toBe(0);
    expect(t.broker.delivered('room')).toBeUndefined();
  });

  it('a closed connection’s joins end, and a join waiting for the live stream leaves its position in the session', () => {
    const t = setup();
    const { conn } = readyClient(t.topics);
    conn.session = { id: 's1', userId: 'u1', subscriptions: {} };
    conn.joinMap().set('room', { buffer: [], bufferBytes: 0, overflowed: false, waiting: { sent: 9, epoch: 'ep', timer: setTimeout(() => undefined, 60_000) } });
    t.hub.addJoiner('room', conn);
    void t.broker.subscribe('room');
    conn.state = 'closed';
    t.subs.closeJoins(conn);
    expect(conn.session.subscriptions['room']).toEqual({ seq: 9, epoch: 'ep' });
    expect(conn.joining.get('room')!.waiting).toBeUndefined();
    expect(t.broker.delivered('room')).toBeUndefined();
  });
});
