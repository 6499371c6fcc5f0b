/**
 * The SDK's additions where they meet the wire, against a real edge with an in-process job
 * runner (the demo pipeline): submitJob over HTTP, a job that is not this user's, setToken
 * after a refused token and on a live connection.
 */
import { followJob, HttpError, SwitchyardClient, type ConnectionState } from '@switchyard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PIPELINE } from '../jobs/helpers.js';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { waitFor } from '../harness/ports.js';
import { FAST, clientPool } from './helpers.js';


describe('SDK additions against a real edge', () => {
  let edge: EdgeProcess;
  const make = clientPool();

  beforeAll(async () => {
    edge = await startEdge({ PIPELINE_EXECUTABLE: DEMO_PIPELINE, GPU_DEVICES: 'none', RUNNER_CONCURRENCY: '2', BASE_RETRY_DELAY: '0.05' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('submitJob posts to the HTTP side derived from the ws URL and the job runs to completion; another user cannot follow it', async () => {
    const owner = uniqueSub('owner');
    const client = make({ url: edge.url, token: () => hsToken({ sub: owner }), reconnect: FAST });
    const { jobId } = await client.submitJob({ sample_id: 'S1', params: { stages: 2, stage_ms: 50 } });
    expect(jobId).toMatch(/\S/);
    const final = await followJob(client, jobId).done;
    expect(final).toMatchObject({ status: 'completed', progress: 1, error: undefined });

    // The same job_id again: refused with the server's code and HTTP status.
    const again = await client.submitJob({ job_id: jobId }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(HttpError);
    expect(again).toMatchObject({ status: 409, serverCode: 'job_exists' });

    // Someone else's job: an error on the job state, not "unknown" forever.
    const stranger = make({ url: edge.url, token: () => hsToken({ sub: uniqueSub('stranger') }), reconnect: FAST });
    const follower = followJob(stranger, jobId);
    await expect(follower.done).rejects.toMatchObject({ serverCode: 'forbidden' });
    expect(follower.state).toMatchObject({ status: 'unknown', error: { serverCode: 'forbidden' } });
    follower.stop();
  });

  it('submitJob with a token the node refuses rejects with HttpError 401', async () => {
    const bad = await hsToken({ sub: uniqueSub('bad'), secret: 'not-the-edge-secret-0123456789-abcdefghijklmnop' });
    const client = make({ url: edge.url, token: bad, autoConnect: false });
    const err = await client.submitJob({ sample_id: 'S1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 401 });
  });

  it('setToken: a client failed on a refused token connects again with a new one, and re-authenticates a live connection', async () => {
    const sub = uniqueSub('settoken');
    const bad = await hsToken({ sub, secret: 'not-the-edge-secret-0123456789-abcdefghijklmnop' });
    const client = make({ url: edge.url, token: bad, reconnect: FAST });
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    await expect(client.waitForConnection()).rejects.toMatchObject({ code: 'auth_failed' });
    expect(client.state.status).toBe('failed');
    client.setToken(await hsToken({ sub, channels: ['room:*'] }));
    const hello = await client.waitForConnection();
    expect(hello.userId).toBe(sub);
    await client.subscribe('room:1');
    // On the live connection: the new token is taken without a reconnect.
    const connects = states.filter((s) => s.status === 'connected').length;
    client.setToken(await hsToken({ sub, channels: ['room:*'], extra: { n: 2 } }));
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    expect(client.state.status).toBe('connected');
    expect(states.filter((s) => s.status === 'connected').length).toBe(connects);
  });

  it('a connection the node drops (the node stops) is labelled closedBy: server', async () => {
    const draining = await startEdge({});
    try {
      const client = make({ url: draining.url, token: () => hsToken({ sub: uniqueSub('closedby') }), reconnect: FAST });
      const states: ConnectionState[] = [];
      client.on('state', (s) => states.push(s));
      await client.waitForConnection();
      await draining.stop();
      const r = await waitFor(() => states.find((s) => s.status === 'reconnecting'), 30_000, `reconnecting; states: ${JSON.stringify(states)}`);
      expect(r).toMatchObject({ status: 'reconnecting', closedBy: 'server' });
    } finally {
      await draining.stop();
    }
  });
});
