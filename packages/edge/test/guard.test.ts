import { describe, expect, it } from 'vitest';
import { guarded, openHandler } from '../src/guard.js';

function recordingLog() {
  const errors: Array<{ where: unknown; err: unknown; msg: string }> = [];
  return { errors, log: { error: (obj: { where: unknown; err: unknown }, msg: string) => void errors.push({ ...obj, msg }) } as never };
}

describe('the uWS handler guard', () => {
  it('closes a connection whose set-up failed with 1011 internal_error, and logs where', () => {
    const { errors, log } = recordingLog();
    const ends: Array<[number | undefined, string | undefined]> = [];
    const ws = { end: (code?: number, reason?: string) => void ends.push([code, reason]) };
    const boom = new Error('session table full');
    openHandler(log, () => {
      throw boom;
    })(ws);
    expect(ends).toEqual([[1011, 'internal_error']]);
    expect(errors).toEqual([{ where: 'open', err: boom, msg: 'handler failed' }]);
  });

  it('leaves a connection that opened alone', () => {
    const { errors, log } = recordingLog();
    const ends: unknown[] = [];
    const opened: unknown[] = [];
    const ws = { end: () => void ends.push(1) };
    openHandler(log, (s) => void opened.push(s))(ws);
    expect(opened).toEqual([ws]);
    expect(ends).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('never lets an exception out, not even from the recovery (the socket may be gone)', () => {
    const { errors, log } = recordingLog();
    expect(() =>
      guarded(
        log,
        'message',
        () => {
          throw new Error('bad');
        },
        () => {
          throw new Error('socket closed');
        },
      ),
    ).not.toThrow();
    expect(errors.map((e) => e.where)).toEqual(['message']);
  });
});
