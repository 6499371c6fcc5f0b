import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { ChildClient, broadcast } from './child.js';

/**
 * wscat (the root devDependency) as a third-party client. Without a TTY it prints each
 * incoming message as a raw line on stdout, reads lines from stdin once connected and sends
 * each as a text frame, and after every sent line writes its "> " prompt (no newline) to
 * stdout, so a prompt may precede the next message on the same line.
 */
const WSCAT = fileURLToPath(new URL('../../node_modules/.bin/wscat', import.meta.url));
const KEY = 'bk-wscat';
const dropPrompt = (line: string) => line.replace(/^(> )+/, '');

describe('wscat', () => {
  let edge: EdgeProcess;
  const children: ChildClient[] = [];

  function wscat(args: string[]): ChildClient {
    const child = new ChildClient(WSCAT, ['--no-color', ...args], { cwd: ROOT }, dropPrompt);
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY });
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill()));
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('authenticates with ?token= and gets a pong for -x ping', async () => {
    const token = await hsToken({ sub: 'wscat-user' });
    const client = wscat(['-c', `${edge.url}?token=${token}`, '-x', '{"type":"ping","ref":"p1"}', '-w', '2']);
    // With -x, wscat sends the frame on open and closes after the -w wait by itself.
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(0);
    const frames = client.frames();
    expect(frames[0]).toMatchObject({ type: 'auth_success', user_id: 'wscat-user', resumed: false });
    expect(frames.slice(1)).toEqual([{ type: 'pong', ref: 'p1' }]);
  });

  it('authenticates by first frame from -x', async () => {
    const token = await hsToken({ sub: 'wscat-first-frame' });
    const client = wscat(['-c', edge.url, '-x', JSON.stringify({ type: 'auth', token }), '-x', '{"type":"ping"}', '-w', '2']);
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(0);
    const frames = client.frames();
    expect(frames[0]).toMatchObject({ type: 'auth_success', user_id: 'wscat-first-frame' });
    expect(frames[1]).toEqual({ type: 'pong' });
  });

  it('subscribes from stdin and receives a /broadcast event', async () => {
    const token = await hsToken({ sub: 'wscat-user', channels: ['wscat:*'] });
    const client = wscat(['-c', `${edge.url}?token=${token}`]);
    await client.waitForFrame('auth_success');
    // wscat only reads stdin once the socket is open; auth_success proves that it is.
    client.proc.stdin.write('{"type":"subscribe","channel":"wscat:demo","ref":"s1"}\n');
    const sub = await client.waitForFrame('subscription_result');
    expect(sub).toMatchObject({ channel: 'wscat:demo', success: true, seq: 0, ref: 's1' });

    expect(await broadcast(edge.http, KEY, 'wscat:demo', 'hello', { n: 1 })).toBe(1);
    const event = await client.waitForFrame('event');
    expect(event).toMatchObject({ channel: 'wscat:demo', seq: 1, event: 'hello', data: { n: 1 } });

    client.proc.stdin.write('{"type":"ping","ref":"p2"}\n');
    expect(await client.waitForFrame('pong')).toEqual({ type: 'pong', ref: 'p2' });

    // Closing stdin makes wscat close the socket and exit.
    client.proc.stdin.end();
    const { code } = await client.exit(10_000);
    expect(code).toBe(0);
  });

  it('reports the HTTP 401 for a bad token at upgrade', async () => {
    const client = wscat(['-c', `${edge.url}?token=not-a-jwt`]);
    const { code } = await client.exit(15_000);
    expect(code).not.toBe(0);
    expect(client.stderr).toContain('Unexpected server response: 401');
    expect(client.frames()).toEqual([]);
  });
});
