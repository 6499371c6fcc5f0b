import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeNodeMessage, encodeNodeMessage, type NodeMessage } from '../src/node-messages.js';

const frame = '{"type":"direct","from":"c_abc","user_id":"u1","data":{"text":"a\\tb"}}';

describe('node-to-node messages', () => {
  it('keeps the wire form older nodes speak, byte for byte', () => {
    expect(encodeNodeMessage({ kind: 'direct_to_connection', connectionId: 'c_1', frame })).toBe(`c\tc_1\t${frame}`);
    expect(encodeNodeMessage({ kind: 'direct_to_user', userId: 'alice', exceptConnectionId: 'c_2', frame })).toBe(`u\talice\tc_2\t${frame}`);
    expect(encodeNodeMessage({ kind: 'handover_request', request: 'w1:7', from: 'w1', sessionId: 's_9' })).toBe('h\tw1:7\tw1\ts_9');
    expect(encodeNodeMessage({ kind: 'handover_done', request: 'w1:7' })).toBe('H\tw1:7\t');
  });

  it('reads what older nodes send', () => {
    expect(decodeNodeMessage(`c\tc_1\t${frame}`)).toEqual({ kind: 'direct_to_connection', connectionId: 'c_1', frame });
    expect(decodeNodeMessage(`u\talice\tc_2\t${frame}`)).toEqual({ kind: 'direct_to_user', userId: 'alice', exceptConnectionId: 'c_2', frame });
    expect(decodeNodeMessage('h\tw1:7\tw1\ts_9')).toEqual({ kind: 'handover_request', request: 'w1:7', from: 'w1', sessionId: 's_9' });
    expect(decodeNodeMessage('H\tw1:7\t')).toEqual({ kind: 'handover_done', request: 'w1:7' });
  });

  it('ignores what it does not know or what is cut short, without throwing', () => {
    for (const payload of ['', 'c', 'c\tonly', 'u\tuser\tno-frame', 'h\treq\tfrom', 'H\tno-tab', 'x\ta\tb', '\t\t', 'zz\ta\tb\tc']) {
      expect(decodeNodeMessage(payload)).toBeUndefined();
    }
  });

  it('round-trips any message whose ids hold no tab', () => {
    const id = fc.string({ minLength: 0, maxLength: 20 }).filter((s) => !s.includes('\t'));
    const anyText = fc.string({ maxLength: 200 });
    const message: fc.Arbitrary<NodeMessage> = fc.oneof(
      fc.record({ kind: fc.constant('direct_to_connection' as const), connectionId: id, frame: anyText }),
      fc.record({ kind: fc.constant('direct_to_user' as const), userId: id, exceptConnectionId: id, frame: anyText }),
      fc.record({ kind: fc.constant('handover_request' as const), request: id, from: id, sessionId: anyText }),
      fc.record({ kind: fc.constant('handover_done' as const), request: id }),
    );
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeNodeMessage(encodeNodeMessage(m))).toEqual(m);
      }),
    );
  });
});
