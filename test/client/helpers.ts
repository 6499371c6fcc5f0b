import { SwitchyardClient, type ChannelEvent, type ConnectionState, type StreamGap } from '@switchyard/client';
import { afterEach } from 'vitest';
import type { EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';

export const BROADCAST_KEY = 'bk-client-tests';

/** Publishes through a node's POST /broadcast. */
export async function broadcast(edge: EdgeProcess, channel: string, data: unknown, event = 'tick'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event, data }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Everything a client told the application, in order. */
export interface Recorder {
  readonly events: ChannelEvent[];
  readonly states: ConnectionState[];
  readonly gaps: StreamGap[];
  readonly errors: Error[];
  seqs(channel: string): (number | null)[];
  /** Waits until `channel` has `count` events (bounded by `timeoutMs`). */
  waitForEvents(channel: string, count: number, timeoutMs?: number): Promise<ChannelEvent[]>;
  /** Waits for a state matching `predicate` at index `from` or later of `states`. */
  waitForState(predicate: (s: ConnectionState) => boolean, from?: number, timeoutMs?: number): Promise<ConnectionState>;
  stop(): void;
}

export function record(client: SwitchyardClient): Recorder {
  const events: ChannelEvent[] = [];
  const states: ConnectionState[] = [client.state];
  const gaps: StreamGap[] = [];
  const errors: Error[] = [];
  const offs = [
    client.on('event', (e) => events.push(e)),
    client.on('state', (s) => states.push(s)),
    client.on('gap', (g) => gaps.push(g)),
    client.on('error', (e) => errors.push(e)),
  ];
  const of = (channel: string) => events.filter((e) => e.channel === channel);
  return {
    events,
    states,
    gaps,
    errors,
    seqs: (channel) => of(channel).map((e) => e.seq),
    waitForEvents: (channel, count, timeoutMs = 15_000) =>
      waitFor(() => (of(channel).length >= count ? of(channel) : undefined), timeoutMs, `${count} events on ${channel} (have ${of(channel).length})`),
    waitForState: (predicate, from = 0, timeoutMs = 15_000) =>
      waitFor(() => states.slice(from).find(predicate), timeoutMs, `a state; states so far: ${JSON.stringify(states.map((s) => s.status))}`),
    stop: () => offs.forEach((off) => off()),
  };
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Test-speed reconnect settings. */
export const FAST = { initialDelayMs: 50, maxDelayMs: 500, stableAfterMs: 1000 };

/** Makes clients for the tests of a describe block and closes them after each test. */
export function clientPool(): (options: ConstructorParameters<typeof SwitchyardClient>[0]) => SwitchyardClient {
  const clients: SwitchyardClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  return (options) => {
    const c = new SwitchyardClient(options);
    clients.push(c);
    return c;
  };
}
