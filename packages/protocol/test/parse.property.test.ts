import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, MAX_JSON_DEPTH, nestedTooDeep, parseClientFrame } from '../src/index.js';

/** Property-based checks of the frame parser: it never throws, and it keeps what it is given. */

const channelArb = fc.stringMatching(/^[A-Za-z0-9:_\-.@/]{1,200}$/);
const refArb = fc.option(fc.oneof(fc.string({ maxLength: 128 }), fc.integer()), { nil: undefined });

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const v of Object.values(value)) deepest = Math.max(deepest, depthOf(v));
  return deepest + 1;
}

/** Builds `[[[...]]]`-style nesting around `inner` without recursion in the test itself. */
function nest(depth: number, inner: string, objects: boolean): string {
  return objects ? `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}` : `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
}

describe('parseClientFrame (properties)', () => {
  it('never throws, whatever the text, and every refusal has a code and a reason', () => {
    const texts = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.json({ maxDepth: 6 }),
      fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify({ type: 'publish', channel: 'c', data: v })),
      fc.record({ type: fc.constantFrom('auth', 'subscribe', 'unsubscribe', 'publish', 'direct', 'ping', 'cancel', 'nope'), channel: fc.anything(), since: fc.anything(), ref: fc.anything(), token: fc.anything(), to: fc.anything(), job_id: fc.anything() }).map((o) => {
        try {
          return JSON.stringify(o);
        } catch {
          return '{}';
        }
      }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const r = parseClientFrame(text);
        if (!r.ok) {
          expect(Object.values(ErrorCode)).toContain(r.code);
          expect(r.error.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid subscribe keeps its channel, since and ref exactly', () => {
    fc.assert(
      fc.property(channelArb, fc.option(fc.nat(), { nil: undefined }), refArb, (channel, since, ref) => {
        const r = parseClientFrame(JSON.stringify({ type: 'subscribe', channel, since, ref }));
        expect(r).toEqual({ ok: true, frame: { type: 'subscribe', channel, ...(since !== undefined && { since }), ...(ref !== undefined && { ref }) } });
      }),
    );
  });

  it('a publish keeps any JSON data and event name', () => {
    fc.assert(
      fc.property(channelArb, fc.string({ minLength: 1, maxLength: 200 }), fc.jsonValue({ maxDepth: 8 }), (channel, event, data) => {
        const r = parseClientFrame(JSON.stringify({ type: 'publish', channel, event, data }));
        expect(r.ok).toBe(true);
        if (r.ok && r.frame.type === 'publish') {
          expect(r.frame.event).toBe(event);
          expect(JSON.stringify(r.frame.data)).toBe(JSON.stringify(data ?? null));
        }
      }),
    );
  });

  it('nesting deeper than 64 is bad_json; 64 and less is judged on its merits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), fc.boolean(), (depth, objects) => {
        const r = parseClientFrame(`{"type":"publish","channel":"c","data":${nest(depth, '1', objects)}}`);
        // The frame object itself is one level.
        if (depth + 1 > MAX_JSON_DEPTH) expect(r).toMatchObject({ ok: false, code: ErrorCode.BadJson });
        else expect(r.ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('nestedTooDeep (properties)', () => {
  it('agrees with the depth of any JSON value, brackets inside strings not counted', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 14 }), (value, max) => {
        expect(nestedTooDeep(JSON.stringify(value), max)).toBe(depthOf(value) > max);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 500 }), (text) => void nestedTooDeep(text)));
  });
});
