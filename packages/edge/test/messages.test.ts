import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/connection.js';
import { Messages } from '../src/messages.js';
import { encodeNodeMessage } from '../src/node-messages.js';
import { UserIndex } from '../src/user-index.js';
import { FakeTopics, readyClient, services } from './fakes.js';

function setup() {
  const s = services();
  const byId = new Map<string, Connection>();
  const byUser = new UserIndex<Connection>();
  const handovers: string[] = [];
  const local: [string, string][] = [];
  const messages = new Messages(
    { ...s, jobs: undefined, byId, byUser },
    { publishLocal: (channel, frame) => void local.push([channel, frame]) },
    { handOver: (from, request, sessionId) => void handovers.push(`over ${from} ${request} ${sessionId}`), handedOver: (request) => void handovers.push(`done ${request}`) },
  );
  const topics = new FakeTopics();
  const client = (sub: string) => {
    const c = readyClient(topics, sub);
    byId.set(c.conn.id, c.conn);
    byUser.add(sub, c.conn);
    return c;
  };
  return { ...s, messages, client, handovers, local };
}

describe('Messages: node-to-node dispatch', () => {
  it('hands a direct message to the connection named, only once it is ready', () => {
    const t = setup();
    const a = t.client('alice');
    const pending = t.client('bob');
    pending.conn.state = 'authenticating';
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'direct_to_connection', connectionId: a.conn.id, frame: '{"type":"direct"}' }));
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'direct_to_connection', connectionId: pending.conn.id, frame: '{"type":"direct"}' }));
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'direct_to_connection', connectionId: 'c_gone', frame: '{"type":"direct"}' }));
    expect(a.socket.sent).toEqual(['{"type":"direct"}']);
    expect(pending.socket.sent).toEqual([]);
  });

  it('hands a user’s direct message to each of its connections but the sender’s', () => {
    const t = setup();
    const one = t.client('alice');
    const two = t.client('alice');
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'direct_to_user', userId: 'alice', exceptConnectionId: one.conn.id, frame: '{"type":"direct"}' }));
    expect(one.socket.sent).toEqual([]);
    expect(two.socket.sent).toEqual(['{"type":"direct"}']);
  });

  it('routes handover requests and answers to the session unit, and ignores what it cannot read', () => {
    const t = setup();
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'handover_request', request: 'w2:1', from: 'w2', sessionId: 's_1' }));
    t.messages.onNodeMessage(encodeNodeMessage({ kind: 'handover_done', request: 'w1:4' }));
    t.messages.onNodeMessage('garbage');
    t.messages.onNodeMessage('q\ta\tb');
    expect(t.handovers).toEqual(['over w2 w2:1 s_1', 'done w1:4']);
  });

  it('sends a direct message for a connection on this node at once, and `not_found` for one nowhere', async () => {
    const t = setup();
    const from = t.client('alice');
    const to = t.client('bob');
    await t.messages.direct(from.conn, to.conn.id, { hi: 1 }, 'r1');
    expect(to.socket.frames()).toEqual([{ type: 'direct', from: from.conn.id, user_id: 'alice', data: { hi: 1 } }]);
    expect(from.socket.frames()).toEqual([{ type: 'ack', ref: 'r1' }]);
    await t.messages.direct(from.conn, 'c_nowhere', { hi: 2 }, 'r2');
    expect(from.socket.frames()[1]).toMatchObject({ type: 'error', code: 'not_found', ref: 'r2' });
  });
});
