// @vitest-environment happy-dom
import { act, createElement, StrictMode, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, describe, expect, it } from 'vitest';
import { SwitchyardProvider, useChannel, useConnectionState, useJob, useSwitchyard, type ChannelView } from '../src/react.js';
import type { ConnectionState, JobState, SwitchyardClient } from '../src/index.js';
import { MemoryServer } from './memory-socket.js';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** A DOM element from happy-dom (the project's type-check has no DOM typings). */
const container = (): never => (globalThis as unknown as { document: { createElement(tag: string): never } }).document.createElement('div');

const roots: Root[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await act(async () => r.unmount());
});

async function render(node: ReactNode): Promise<Root> {
  const root = createRoot(container());
  roots.push(root);
  await act(async () => root.render(node));
  return root;
}

/** Lets sockets, frames and the provider's deferred close run, inside act. */
async function settle(ms = 30): Promise<void> {
  // sleep-ok: lets React effects and the provider's deferred close run inside act; tests then assert on state
  await act(async () => new Promise((r) => setTimeout(r, ms)));
}

async function until(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

const seen: { client?: SwitchyardClient; state?: ConnectionState; channel?: ChannelView; job?: JobState } = {};
function Probe({ channel, job }: { channel?: string; job?: string }): ReactNode {
  seen.client = useSwitchyard();
  seen.state = useConnectionState();
  seen.channel = useChannel(channel ?? null);
  seen.job = useJob(job ?? null);
  return null;
}

const app = (server: MemoryServer, props: { token?: string; url?: string; channel?: string; job?: string } = {}) =>
  createElement(
    StrictMode,
    null,
    createElement(
      SwitchyardProvider,
      { url: props.url ?? 'ws://node.test:8765/ws', token: props.token ?? 'alice', WebSocket: server.WebSocket, reconnect: { initialDelayMs: 1, maxDelayMs: 5 } },
      createElement(Probe, { channel: props.channel, job: props.job }),
    ),
  );

describe('SwitchyardProvider', () => {
  it('opens one socket under StrictMode, and closes it on unmount', async () => {
    const server = new MemoryServer();
    const root = await render(app(server));
    await until(() => seen.state?.status === 'connected', 'connected');
    expect(server.sockets).toHaveLength(1);
    await act(async () => root.unmount());
    roots.splice(roots.indexOf(root), 1);
    await until(() => server.open === 0, 'the socket closed');
    expect(seen.client!.state.status).toBe('closed');
  });

  it('survives hot reload: re-rendering and remounting with the same config leaks no socket', async () => {
    const server = new MemoryServer();
    let root = await render(app(server));
    await until(() => seen.state?.status === 'connected', 'connected');
    for (let i = 0; i < 3; i++) {
      // A Fast Refresh re-renders in place; an edit to the component holding the provider remounts it.
      await act(async () => root.render(app(server)));
      await act(async () => root.unmount());
      roots.pop();
      root = await render(app(server));
      await until(() => seen.state?.status === 'connected', 'connected again');
      await settle();
    }
    expect(server.open).toBe(1);
  });

  it('hands a new token to the same client (setToken); a new URL makes a new client and closes the old one', async () => {
    const server = new MemoryServer();
    const root = await render(app(server, { token: 'alice' }));
    await until(() => seen.state?.status === 'connected', 'connected');
    const first = seen.client!;
    await act(async () => root.render(app(server, { token: 'alice-2' })));
    await until(() => server.received.some((f) => f['type'] === 'auth' && f['token'] === 'alice-2'), 're-auth with the new token');
    expect(seen.client).toBe(first);
    expect(server.sockets).toHaveLength(1);
    await act(async () => root.render(app(server, { token: 'alice-2', url: 'ws://other.test:8765/ws' })));
    await until(() => seen.client !== first && seen.state?.status === 'connected', 'the new client connected');
    await until(() => first.state.status === 'closed', 'the old client closed');
    expect(server.open).toBe(1);
  });

  it('useSwitchyard outside a provider says what is missing', async () => {
    function Lost(): ReactNode {
      useSwitchyard();
      return null;
    }
    const root = createRoot(container());
    roots.push(root);
    await expect(act(async () => root.render(createElement(Lost)))).rejects.toThrow(/no <SwitchyardProvider> above this component/);
  });
});

describe('hook states follow the connection and carry errors', () => {
  it('useChannel: subscribed, then error when the connection fails for good; events keyed by id', async () => {
    const server = new MemoryServer();
    await render(app(server, { channel: 'room' }));
    await until(() => seen.channel?.status === 'subscribed', 'subscribed');
    server.emit('room', 'said', { n: 1 });
    await until(() => seen.channel!.events.length === 1, 'an event');
    expect(seen.channel!.events[0]!.id).toBe('e1:1');
    // The server closes; then every reconnect is refused: the client fails for good.
    server.refused.add('alice');
    await act(async () => server.sockets[0]!.serverClose(1011, 'gone'));
    await until(() => seen.channel?.status === 'error', 'the channel in error');
    expect(seen.channel!.error).toMatchObject({ code: 'auth_failed' });
    expect(seen.state?.status).toBe('failed');
  });

  it('useChannel shows a refused channel as an error', async () => {
    const server = new MemoryServer();
    server.forbidden.add('secret');
    await render(app(server, { channel: 'secret' }));
    await until(() => seen.channel?.status === 'error', 'the refusal');
    expect(seen.channel!.error).toMatchObject({ serverCode: 'forbidden' });
  });

  it('useJob on a job that is not this user’s shows the error, not "unknown" forever', async () => {
    const server = new MemoryServer();
    server.forbidden.add('job:theirs');
    await render(app(server, { job: 'theirs' }));
    await until(() => seen.job?.error !== undefined, 'the job error');
    expect(seen.job).toMatchObject({ jobId: 'theirs', status: 'unknown', error: { serverCode: 'forbidden' } });
  });
});
