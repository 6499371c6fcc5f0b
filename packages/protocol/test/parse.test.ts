import { describe, expect, it } from 'vitest';
import { ErrorCode, parseClientFrame, validateClientFrame, type ParseResult } from '../src/index.js';

function ok(text: string) {
  const r = parseClientFrame(text);
  if (!r.ok) throw new Error(`expected ${text} to parse, got ${r.code}: ${r.error}`);
  return r.frame;
}

function bad(text: string): Extract<ParseResult, { ok: false }> {
  const r = parseClientFrame(text);
  if (r.ok) throw new Error(`expected ${text} to be refused, got ${JSON.stringify(r.frame)}`);
  expect(typeof r.error).toBe('string');
  expect(r.error.length).toBeGreaterThan(0);
  return r;
}

const j = (v: unknown) => JSON.stringify(v);

describe('parseClientFrame: what is not a frame', () => {
  it('refuses text that is not JSON with bad_json', () => {
    for (const text of ['', 'not json', '{"type":"ping"', "{'type':'ping'}", '{"type":"ping"}}']) {
      expect(bad(text).code, text).toBe(ErrorCode.BadJson);
    }
  });

  it('refuses JSON that is not an object with bad_frame', () => {
    for (const text of ['null', '1', '"ping"', 'true', '[]', '[{"type":"ping"}]']) {
      expect(bad(text).code, text).toBe(ErrorCode.BadFrame);
    }
  });

  it('needs a string type', () => {
    expect(bad('{}').code).toBe(ErrorCode.BadFrame);
    expect(bad('{"type":1}').code).toBe(ErrorCode.BadFrame);
    expect(bad('{"type":null}').code).toBe(ErrorCode.BadFrame);
    expect(bad('{"type":["ping"]}').code).toBe(ErrorCode.BadFrame);
  });

  it('answers an unknown type with unknown_type, keeping ref and type', () => {
    const r = bad(j({ type: 'dance', ref: 'r9' }));
    expect(r).toMatchObject({ code: ErrorCode.UnknownType, ref: 'r9', type: 'dance' });
    expect(bad(j({ type: '' })).code).toBe(ErrorCode.UnknownType);
    // Type names are matched exactly.
    expect(bad(j({ type: 'PING' })).code).toBe(ErrorCode.UnknownType);
  });

  it('keeps a huge unknown type out of the error text', () => {
    const r = bad(j({ type: 'x'.repeat(10_000) }));
    expect(r.error.length).toBeLessThan(200);
  });
});

describe('ref', () => {
  it('echoes a string or number ref on success and on failure', () => {
    expect(ok(j({ type: 'ping', ref: 'r1' }))).toEqual({ type: 'ping', ref: 'r1' });
    expect(ok(j({ type: 'ping', ref: 7 }))).toEqual({ type: 'ping', ref: 7 });
    expect(ok(j({ type: 'ping', ref: 0 }))).toEqual({ type: 'ping', ref: 0 });
    expect(ok(j({ type: 'ping', ref: '' }))).toEqual({ type: 'ping', ref: '' });
    expect(bad(j({ type: 'subscribe', channel: 'bad channel', ref: 'r2' }))).toMatchObject({ code: ErrorCode.BadChannel, ref: 'r2' });
    expect(bad(j({ type: 'subscribe', ref: 3 }))).toMatchObject({ code: ErrorCode.BadFrame, ref: 3 });
  });

  it('leaves ref out when the client sent none', () => {
    expect(ok(j({ type: 'ping' }))).toEqual({ type: 'ping' });
    expect('ref' in bad(j({ type: 'subscribe' }))).toBe(false);
  });

  it('refuses a ref that is neither a short string nor a finite number', () => {
    for (const ref of [null, true, { a: 1 }, [1], 'r'.repeat(129)]) {
      const r = bad(j({ type: 'ping', ref }));
      expect(r.code, j(ref)).toBe(ErrorCode.BadFrame);
      expect('ref' in r).toBe(false);
    }
    expect(ok(j({ type: 'ping', ref: 'r'.repeat(128) }))).toMatchObject({ ref: 'r'.repeat(128) });
  });
});

describe('auth', () => {
  it('reads token and optional session_id', () => {
    expect(ok(j({ type: 'auth', token: 'abc' }))).toEqual({ type: 'auth', token: 'abc' });
    expect(ok(j({ type: 'auth', token: 'abc', session_id: 's_1', ref: 'a' }))).toEqual({ type: 'auth', token: 'abc', session_id: 's_1', ref: 'a' });
    expect(ok(j({ type: 'auth', token: 'abc', session_id: null }))).toEqual({ type: 'auth', token: 'abc' });
  });

  it('refuses a missing, empty, non-string or oversized token', () => {
    for (const token of [undefined, '', 1, null, ['t'], 'x'.repeat(16 * 1024 + 1)]) {
      expect(bad(j({ type: 'auth', token })), j(token)?.slice(0, 20)).toMatchObject({ code: ErrorCode.BadFrame, type: 'auth' });
    }
    expect(ok(j({ type: 'auth', token: 'x'.repeat(16 * 1024) })).type).toBe('auth');
  });

  it('refuses a session_id that is not a non-empty short string', () => {
    for (const session_id of ['', 5, {}, 'x'.repeat(201)]) {
      expect(bad(j({ type: 'auth', token: 't', session_id })).code).toBe(ErrorCode.BadFrame);
    }
  });
});

describe('auth positions (v1.1)', () => {
  it('reads positions: channel → non-negative integer', () => {
    const frame = ok(j({ type: 'auth', token: 't', session_id: 's', positions: { 'room:1': 0, 'a@b/c': 42 } }));
    expect(frame).toEqual({ type: 'auth', token: 't', session_id: 's', positions: { 'room:1': 0, 'a@b/c': 42 } });
    expect(ok(j({ type: 'auth', token: 't', positions: null }))).toEqual({ type: 'auth', token: 't' });
  });

  it('keeps channels named like Object.prototype members as plain entries', () => {
    const frame = ok('{"type":"auth","token":"t","positions":{"constructor":3,"__proto__":4}}') as { positions: Record<string, number> };
    expect(Object.hasOwn(frame.positions, 'constructor')).toBe(true);
    expect(frame.positions['constructor']).toBe(3);
    expect(Object.hasOwn(frame.positions, 'toString')).toBe(false);
  });

  it('refuses positions that are not an object of valid channel → non-negative safe integer', () => {
    for (const positions of [[1], 'x', 3, true, { 'bad channel': 1 }, { a: -1 }, { a: 1.5 }, { a: '2' }, { a: null }, { a: 2 ** 60 }]) {
      const r = bad(j({ type: 'auth', token: 't', positions, ref: 'p' }));
      expect(r, j(positions)).toMatchObject({ code: ErrorCode.BadFrame, ref: 'p', type: 'auth' });
      expect(r.error).toContain('positions');
    }
    const many = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`c${i}`, i]));
    expect(bad(j({ type: 'auth', token: 't', positions: many })).error).toContain('at most 1000');
  });
});

describe('presence (v1.1)', () => {
  it('reads channel (or job_id) and ref', () => {
    expect(ok(j({ type: 'presence', channel: 'room:1', ref: 'r' }))).toEqual({ type: 'presence', channel: 'room:1', ref: 'r' });
    expect(ok(j({ type: 'presence', job_id: 'j1' }))).toEqual({ type: 'presence', channel: 'job:j1' });
  });

  it('refuses a missing or bad channel', () => {
    expect(bad(j({ type: 'presence', ref: 1 }))).toMatchObject({ code: ErrorCode.BadFrame, ref: 1 });
    expect(bad(j({ type: 'presence', channel: 'a b' }))).toMatchObject({ code: ErrorCode.BadChannel });
  });
});

describe('subscribe and unsubscribe', () => {
  it('reads channel, since and ref', () => {
    expect(ok(j({ type: 'subscribe', channel: 'dashboard' }))).toEqual({ type: 'subscribe', channel: 'dashboard' });
    expect(ok(j({ type: 'subscribe', channel: 'dashboard', since: 12, ref: 'r1' }))).toEqual({
      type: 'subscribe',
      channel: 'dashboard',
      since: 12,
      ref: 'r1',
    });
    expect(ok(j({ type: 'subscribe', channel: 'd', since: 0 }))).toEqual({ type: 'subscribe', channel: 'd', since: 0 });
    expect(ok(j({ type: 'subscribe', channel: 'd', since: null }))).toEqual({ type: 'subscribe', channel: 'd' });
    expect(ok(j({ type: 'unsubscribe', channel: 'dashboard', ref: 2 }))).toEqual({ type: 'unsubscribe', channel: 'dashboard', ref: 2 });
  });

  it('reads `snapshot: false` (a job channel’s plain replay); true or absent is the default', () => {
    expect(ok(j({ type: 'subscribe', job_id: 'j1', since: 0, snapshot: false }))).toEqual({ type: 'subscribe', channel: 'job:j1', since: 0, snapshot: false });
    expect(ok(j({ type: 'subscribe', job_id: 'j1', snapshot: true }))).toEqual({ type: 'subscribe', channel: 'job:j1' });
    expect(bad(j({ type: 'subscribe', job_id: 'j1', snapshot: 'no' })).code).toBe(ErrorCode.BadFrame);
  });

  it('resolves job_id to the job:<id> channel', () => {
    expect(ok(j({ type: 'subscribe', job_id: 'job-123' }))).toEqual({ type: 'subscribe', channel: 'job:job-123' });
    expect(ok(j({ type: 'unsubscribe', job_id: 'job-123' }))).toEqual({ type: 'unsubscribe', channel: 'job:job-123' });
  });

  it('prefers channel over job_id when both are given', () => {
    expect(ok(j({ type: 'subscribe', channel: 'a', job_id: 'b' }))).toMatchObject({ channel: 'a' });
  });

  it('refuses an invalid channel or job_id with bad_channel', () => {
    for (const channel of ['', 'a b', 'x'.repeat(201), 5, ['a'], 'a*']) {
      expect(bad(j({ type: 'subscribe', channel })).code, j(channel)).toBe(ErrorCode.BadChannel);
      expect(bad(j({ type: 'unsubscribe', channel })).code, j(channel)).toBe(ErrorCode.BadChannel);
    }
    for (const job_id of ['', 'a b', 7, 'x'.repeat(197)]) {
      expect(bad(j({ type: 'subscribe', job_id })).code, j(job_id)).toBe(ErrorCode.BadChannel);
    }
  });

  it('needs a channel or a job_id', () => {
    expect(bad(j({ type: 'subscribe' }))).toMatchObject({ code: ErrorCode.BadFrame, type: 'subscribe' });
    expect(bad(j({ type: 'unsubscribe', channel: null }))).toMatchObject({ code: ErrorCode.BadFrame });
  });

  it('refuses since that is not a non-negative safe integer', () => {
    for (const since of [-1, 1.5, '3', true, {}, 2 ** 53]) {
      expect(bad(j({ type: 'subscribe', channel: 'd', since })).code, j(since)).toBe(ErrorCode.BadFrame);
    }
  });
});

describe('publish', () => {
  it('reads channel, event, data, coalesce and ref', () => {
    expect(ok(j({ type: 'publish', channel: 'dashboard', event: 'system.status', data: { ok: true }, ref: 'p' }))).toEqual({
      type: 'publish',
      channel: 'dashboard',
      event: 'system.status',
      data: { ok: true },
      ref: 'p',
    });
    expect(ok(j({ type: 'publish', channel: 'c', event: 'e', data: 1, coalesce: 'k' }))).toMatchObject({ coalesce: 'k' });
  });

  it('defaults event to "message" and data to null', () => {
    expect(ok(j({ type: 'publish', channel: 'c' }))).toEqual({ type: 'publish', channel: 'c', event: 'message', data: null });
    expect(ok(j({ type: 'publish', channel: 'c', event: null, data: null }))).toEqual({ type: 'publish', channel: 'c', event: 'message', data: null });
  });

  it('keeps falsy data as sent', () => {
    expect(ok(j({ type: 'publish', channel: 'c', data: 0 }))).toMatchObject({ data: 0 });
    expect(ok(j({ type: 'publish', channel: 'c', data: false }))).toMatchObject({ data: false });
    expect(ok(j({ type: 'publish', channel: 'c', data: '' }))).toMatchObject({ data: '' });
  });

  it('refuses a missing or bad channel, a bad event and a bad coalesce key', () => {
    expect(bad(j({ type: 'publish', data: 1 })).code).toBe(ErrorCode.BadFrame);
    expect(bad(j({ type: 'publish', channel: 'a b', data: 1 })).code).toBe(ErrorCode.BadChannel);
    expect(bad(j({ type: 'publish', channel: null, data: 1 })).code).toBe(ErrorCode.BadChannel);
    for (const event of ['', 5, 'e'.repeat(201), ['e']]) {
      expect(bad(j({ type: 'publish', channel: 'c', event })).code, j(event)).toBe(ErrorCode.BadFrame);
    }
    expect(ok(j({ type: 'publish', channel: 'c', event: 'e'.repeat(200) })).type).toBe('publish');
    for (const coalesce of ['', 1, null]) {
      expect(bad(j({ type: 'publish', channel: 'c', coalesce })).code, j(coalesce)).toBe(ErrorCode.BadFrame);
    }
  });
});

describe('direct', () => {
  it('reads to and data', () => {
    expect(ok(j({ type: 'direct', to: 'c_abc', data: { hello: 1 } }))).toEqual({ type: 'direct', to: 'c_abc', data: { hello: 1 } });
    expect(ok(j({ type: 'direct', to: 'user:bob' }))).toEqual({ type: 'direct', to: 'user:bob', data: null });
  });

  it('needs a non-empty string "to"', () => {
    for (const to of [undefined, '', 3, null, 'x'.repeat(206)]) {
      expect(bad(j({ type: 'direct', to, data: 1 })).code, j(to)).toBe(ErrorCode.BadFrame);
    }
    expect(ok(j({ type: 'direct', to: `user:${'x'.repeat(200)}` })).type).toBe('direct');
  });
});

describe('cancel and ping', () => {
  it('reads a cancel with a valid job_id', () => {
    expect(ok(j({ type: 'cancel', job_id: 'job-1', ref: 'c' }))).toEqual({ type: 'cancel', job_id: 'job-1', ref: 'c' });
    for (const job_id of [undefined, '', 'a b', 4]) {
      expect(bad(j({ type: 'cancel', job_id })).code, j(job_id)).toBe(ErrorCode.BadFrame);
    }
  });

  it('reads a ping and ignores unknown extra fields', () => {
    expect(ok(j({ type: 'ping', extra: [1, 2, 3] }))).toEqual({ type: 'ping' });
    expect(ok(j({ type: 'subscribe', channel: 'c', whatever: true }))).toEqual({ type: 'subscribe', channel: 'c' });
  });
});

describe('validateClientFrame', () => {
  it('validates an already parsed object the same way', () => {
    expect(validateClientFrame({ type: 'subscribe', job_id: 'j1' })).toEqual({ ok: true, frame: { type: 'subscribe', channel: 'job:j1' } });
    expect(validateClientFrame({ type: 'nope' })).toMatchObject({ ok: false, code: ErrorCode.UnknownType });
  });

  it('never throws, whatever the input', () => {
    const inputs = ['{"type":"subscribe","channel":{"toString":1}}', '{"__proto__":{"type":"ping"}}', '{"type":"auth","token":{}}', '\u0000', '{"type":"publish","channel":"c","data":{"a":{"b":{"c":[1,2,{"d":null}]}}}}'];
    for (const text of inputs) expect(() => parseClientFrame(text)).not.toThrow();
    // __proto__ in JSON is an own key, not a prototype: the frame still has no type.
    expect(parseClientFrame('{"__proto__":{"type":"ping"}}')).toMatchObject({ ok: false, code: ErrorCode.BadFrame });
  });
});
