import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';

/**
 * A bounded fuzz run against a live edge: clients send random and mutated frames (valid frames
 * of every type with a character changed, cut short or spliced, random JSON, binary, deep
 * nesting, oversize), close at random or vanish without a close, and reconnect; meanwhile random
 * HTTP requests hit every endpoint. Bounded in count (FUZZ_FRAMES) and time (FUZZ_MS). After it:
 * the node is alive and serving, never answered 500, never logged a failed handler, and its
 * memory is back near where it started.
 */

const FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 20_000);
const FUZZ_MS = Number(process.env['FUZZ_MS'] ?? 20_000);
const CLIENTS = 4;
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
const KEY = 'bk-fuzz';

const channel = fc.oneof(fc.constantFrom('room', 'job:j1', 'user:fuzz', 'a:b', 'x'), fc.string({ maxLength: 20 }));
const ref = fc.option(fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), { nil: undefined });
const validFrame = fc.oneof(
  fc.record({ type: fc.constant('ping'), ref }),
  fc.record({ type: fc.constant('subscribe'), channel, since: fc.option(fc.integer({ min: -2, max: 50 }), { nil: undefined }), ref }),
  fc.record({ type: fc.constant('subscribe'), job_id: fc.string({ maxLength: 12 }) }),
  fc.record({ type: fc.constant('unsubscribe'), channel, ref }),
  fc.record({ type: fc.constant('publish'), channel, event: fc.string({ maxLength: 12 }), data: fc.jsonValue({ maxDepth: 4 }), coalesce: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }), ref }),
  fc.record({ type: fc.constant('direct'), to: fc.oneof(fc.constant('user:fuzz'), fc.string({ maxLength: 12 })), data: fc.jsonValue({ maxDepth: 3 }), ref }),
  fc.record({ type: fc.constant('cancel'), job_id: fc.string({ maxLength: 12 }), ref }),
  fc.record({ type: fc.constant('auth'), token: fc.string({ maxLength: 40 }), session_id: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }) }),
  fc.record({ type: fc.string({ maxLength: 10 }), ref }),
);

type Action = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array } | { kind: 'close' } | { kind: 'terminate' };

const mutated = fc.tuple(validFrame, fc.nat(), fc.nat(), fc.string({ maxLength: 4 }), fc.constantFrom('cut', 'flip', 'splice', 'dup')).map(([frame, a, b, junk, how]) => {
  const text = JSON.stringify(frame);
  const i = a % (text.length + 1);
  if (how === 'cut') return text.slice(0, i);
  if (how === 'flip') return `${text.slice(0, i)}${junk}${text.slice(i + 1)}`;
  if (how === 'dup') return `${text}${text.slice(0, b % (text.length + 1))}`;
  return `${text.slice(0, i)}${text.slice(b % (text.length + 1))}`;
});

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 30, arbitrary: validFrame.map((f) => ({ kind: 'text' as const, text: JSON.stringify(f) })) },
  { weight: 30, arbitrary: mutated.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 8, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 4, arbitrary: fc.integer({ min: 60, max: 5000 }).map((d) => ({ kind: 'text' as const, text: `{"type":"publish","channel":"x","data":${'['.repeat(d)}${']'.repeat(d)}}` })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'text' as const, text: `{"type":"publish","channel":"x","data":"${'z'.repeat(70_000)}"}` }) },
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 100 }).map((bytes) => ({ kind: 'binary' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'terminate' as const }) },
);

const httpRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS', 'PUT'),
  path: fc.constantFrom('/broadcast', '/auth/token', '/jobs', '/jobs/j1', '/jobs/..%2F..', '/health', '/stats', '/ready', '/nowhere', '/ws'),
  body: fc.oneof(fc.json({ maxDepth: 5 }), fc.string({ maxLength: 200 }), fc.integer({ min: 60, max: 3000 }).map((d) => `{"channel":"x","data":${'['.repeat(d)}${']'.repeat(d)}}`)),
  auth: fc.constantFrom('', `Bearer ${KEY}`, 'Bearer nope', 'Basic x'),
});

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

describe('fuzzing a live edge', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY, DEV_TOKENS: 'true', RATE_LIMIT_PER_S: '400', RATE_LIMIT_BURST: '800', MAX_CONNECTIONS_PER_USER: '50' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it(`random and mutated frames, random closes and HTTP requests: no crash, no 500, memory back near start (seed ${SEED})`, async () => {
    const token = await hsToken({ sub: 'fuzz', permissions: ['*:read', '*:write'] });
    const actions = fc.sample(action, { numRuns: FRAMES, seed: SEED });
    const requests = fc.sample(httpRequest, { numRuns: Math.ceil(FRAMES / 20), seed: SEED + 1 });
    // Warm up (JIT, pools) before the baseline.
    await fetch(`${edge.http}/health`);
    const start = rss(edge.proc.pid!);
    const deadline = Date.now() + FUZZ_MS;
    const statuses: number[] = [];
    let next = 0;

    const openClient = (): Promise<WebSocket> =>
      new Promise((resolve) => {
        const ws = new WebSocket(Math.random() < 0.5 ? `${edge.url}?token=${token}` : edge.url);
        ws.on('error', () => undefined);
        ws.once('open', () => {
          if (!ws.url.includes('token=') && Math.random() < 0.8) ws.send(JSON.stringify({ type: 'auth', token }));
          resolve(ws);
        });
        ws.once('unexpected-response', (_req, res) => {
          statuses.push(res.statusCode ?? 0);
          resolve(ws);
        });
      });

    const client = async () => {
      let ws = await openClient();
      while (next < actions.length && Date.now() < deadline) {
        const a = actions[next++]!;
        if (ws.readyState !== WebSocket.OPEN) {
          ws.terminate();
          ws = await openClient();
          continue;
        }
        if (a.kind === 'text') ws.send(a.text);
        else if (a.kind === 'binary') ws.send(a.bytes, { binary: true });
        else if (a.kind === 'close') ws.close();
        else ws.terminate();
        // sleep-ok: pacing the fuzzer so the node's own timers run between bursts; nothing is asserted after it
        if (next % 25 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      ws.terminate();
    };

    const http = async () => {
      for (const r of requests) {
        if (Date.now() >= deadline) break;
        const res = await fetch(`${edge.http}${r.path}`, {
          method: r.method,
          headers: { ...(r.auth !== '' && { authorization: r.auth }), 'content-type': 'application/json', origin: 'https://fuzz.example' },
          ...(r.method === 'POST' || r.method === 'PUT' ? { body: r.body } : {}),
        }).catch(() => undefined);
        if (res !== undefined) {
          statuses.push(res.status);
          await res.arrayBuffer();
        }
      }
    };

    await Promise.all([...Array.from({ length: CLIENTS }, client), http()]);

    expect(edge.proc.exitCode, 'the edge process is alive').toBeNull();
    expect(statuses.filter((s) => s >= 500 && s !== 503), 'no 5xx but 503 (at capacity)').toEqual([]);
    expect(edge.lines.filter((l) => l.includes('handler failed') || l.includes('frame handling failed')), 'no failed handler').toEqual([]);
    // Still serving: a fresh client subscribes and receives.
    await waitFor(async () => ((await fetch(`${edge.http}/health`)).status === 200 ? true : undefined), 10_000, 'health');
    const probe = new WebSocket(`${edge.url}?token=${token}`);
    const frames: Record<string, unknown>[] = [];
    probe.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((r) => probe.once('open', r));
    probe.send(JSON.stringify({ type: 'subscribe', channel: 'after-fuzz', ref: 's' }));
    await waitFor(() => (frames.some((f) => f['ref'] === 's') ? true : undefined), 10_000, 'subscription_result');
    const res = await fetch(`${edge.http}/broadcast`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: JSON.stringify({ channel: 'after-fuzz', data: 1 }) });
    expect(res.status).toBe(202);
    await waitFor(() => (frames.some((f) => f['type'] === 'event') ? true : undefined), 10_000, 'an event after the fuzz');
    probe.close();
    // Memory back near its start once every fuzz connection is gone.
    await waitFor(async () => (((await (await fetch(`${edge.http}/stats`)).json()) as { connections: number }).connections === 0 ? true : undefined), 20_000, 'fuzz connections gone');
    const end = rss(edge.proc.pid!);
    expect(end - start, `RSS ${start >> 20} MB → ${end >> 20} MB`).toBeLessThan(64 * 1024 * 1024);
  }, FUZZ_MS + 90_000);
});
