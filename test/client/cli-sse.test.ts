import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET, hsToken, runCli, startEdge, type EdgeProcess } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { freePort, waitFor } from '../harness/ports.js';
import { BROADCAST_KEY, broadcast } from './helpers.js';

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function metric(edge: EdgeProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${edge.http}/metrics`)).text();
  const line = text.split('\n').find((l) => pattern.test(l));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

// Each case starts `switchyard` processes (node + tsx): slow on a loaded machine.
describe('switchyard watch channel:<name> --sse against a real edge', { timeout: 60_000 }, () => {
  let edge: EdgeProcess;

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('prints events as JSON lines, and a stream that ends (its token expired) resumes from Last-Event-ID with nothing lost', async () => {
    const channel = `feed:${uniqueSub('sse')}`;
    // Minted 2-second tokens: the node ends the stream with auth_expired; the CLI mints a
    // fresh token and reopens the stream from its last id.
    const cli = runCli(['watch', `channel:${channel}`, '--sse', '--url', edge.http, '--user', 'sse-watcher', '--ttl', '2', '--count', '6'], { JWT_SECRET: TEST_SECRET, SWITCHYARD_TOKEN: undefined }, 45_000);
    const subscribed = async () => ((await (await fetch(`${edge.http}/stats`)).json()) as { subscriptions: number }).subscriptions === 1;
    await waitFor(async () => ((await subscribed()) ? true : undefined), 20_000, 'the stream subscribed');
    for (let n = 1; n <= 3; n++) expect((await broadcast(edge, channel, { n })).status).toBe(202);
    await waitFor(async () => ((await metric(edge, /^switchyard_messages_total\{.*type="auth_expired"/)) >= 1 ? true : undefined), 20_000, 'the first stream to expire');
    // Published while the CLI is between streams.
    for (let n = 4; n <= 6; n++) expect((await broadcast(edge, channel, { n })).status).toBe(202);
    const { code, stdout, stderr } = await cli;
    expect(code, stderr).toBe(0);
    const lines = jsonLines(stdout);
    expect(lines.map((l) => l['seq'])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lines[3]).toMatchObject({ channel, event: 'tick', data: { n: 4 }, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
  });

  it('opens the stream on the next node given when one cannot be reached', async () => {
    const channel = `feed:${uniqueSub('sse-next')}`;
    const token = await hsToken({ sub: 'sse-next', channels: [channel] });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const cli = runCli(['watch', `channel:${channel}`, '--sse', '--url', `${dead},${edge.http}`, '--token', token, '--count', '1'], {}, 40_000);
    const subscribed = async () => ((await (await fetch(`${edge.http}/stats`)).json()) as { sse_streams: number }).sse_streams === 1;
    await waitFor(async () => ((await subscribed()) ? true : undefined), 20_000, 'the stream on the second node');
    expect((await broadcast(edge, channel, { n: 1 })).status).toBe(202);
    const { code, stdout, stderr } = await cli;
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('stream lost');
    expect(jsonLines(stdout).map((l) => l['seq'])).toEqual([1]);
  });

  it('exits 4 on a refused stream and 2 on options --sse cannot take', async () => {
    const noRight = await hsToken({ sub: 'sse-nobody', channels: ['other'] });
    const forbidden = await runCli(['watch', 'channel:secret', '--sse', '--url', edge.http, '--token', noRight], {}, 20_000);
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toContain('HTTP 403 forbidden');
    const job = await runCli(['watch', 'job-1', '--sse', '--url', edge.http, '--token', noRight], {}, 20_000);
    expect(job.code).toBe(2);
    expect(job.stderr).toContain('--sse follows channel:<name>');
    const since = await runCli(['watch', 'channel:x', '--sse', '--since', '0', '--url', edge.http, '--token', noRight], {}, 20_000);
    expect(since.code).toBe(2);
  });
});
