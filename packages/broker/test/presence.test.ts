import { describe, expect, it } from 'vitest';
import { MemoryPresence, joinFrame, leaveFrame } from '../src/index.js';

function store() {
  const sent: [string, unknown][] = [];
  const presence = new MemoryPresence((channel, frame) => sent.push([channel, JSON.parse(frame)]));
  return { presence, sent };
}

describe('MemoryPresence', () => {
  it('announces a user’s first join and last leave only', async () => {
    const { presence, sent } = store();
    expect(await presence.join('room:1', 'ann', '{"a":1}', 1, true)).toBe('joined');
    expect(await presence.join('room:1', 'ann', undefined, 1, false)).toBe('ok');
    expect(await presence.leave('room:1', 'ann')).toBe('ok');
    expect(await presence.leave('room:1', 'ann')).toBe('left');
    expect(await presence.leave('room:1', 'ann')).toBe('ok');
    expect(sent).toEqual([
      ['room:1', { type: 'join', channel: 'room:1', user_id: 'ann', info: { a: 1 } }],
      ['room:1', { type: 'leave', channel: 'room:1', user_id: 'ann' }],
    ]);
  });

  it('answers counts, users sorted by id, at most maxUsers, and truncated', async () => {
    const { presence } = store();
    for (const u of ['d', 'b', 'a', 'c']) await presence.join('room:2', u, u === 'a' ? '{"x":true}' : undefined, 1, false);
    await presence.join('room:2', 'a', undefined, 2, false);
    expect(await presence.get('room:2', 2)).toEqual({
      count: 4,
      connections: 6,
      users: [
        { user_id: 'a', connections: 3, infoJson: '{"x":true}' },
        { user_id: 'b', connections: 1 },
      ],
      truncated: true,
    });
    expect(await presence.get('room:none', 10)).toEqual({ count: 0, connections: 0, users: [], truncated: false });
  });

  it('sync replaces the entries and announces the difference', async () => {
    const { presence, sent } = store();
    await presence.join('room:3', 'keep', undefined, 1, true);
    await presence.join('room:3', 'gone', undefined, 1, false);
    sent.length = 0;
    await presence.sync('room:3', [
      { user_id: 'keep', connections: 2 },
      { user_id: 'new', connections: 1, infoJson: '{"n":1}' },
    ]);
    expect(sent.map(([, f]) => f)).toEqual([
      { type: 'join', channel: 'room:3', user_id: 'new', info: { n: 1 } },
      { type: 'leave', channel: 'room:3', user_id: 'gone' },
    ]);
    expect(await presence.get('room:3', 10)).toMatchObject({ count: 2, connections: 3 });
  });

  it('frames escape user ids and pass info through', () => {
    expect(JSON.parse(joinFrame('c', 'a"b', '{"k":[1]}'))).toEqual({ type: 'join', channel: 'c', user_id: 'a"b', info: { k: [1] } });
    expect(JSON.parse(leaveFrame('c', 'x\\y'))).toEqual({ type: 'leave', channel: 'c', user_id: 'x\\y' });
  });
});
