import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { edgeSettings, loadEdgeConfig, mintToken } from '@switchyard/edge';
import { runnerSettings } from '@switchyard/runner';
import { parse } from '../args.js';
import { localJobs, splitConfigFile } from '../local-jobs.js';
import { makeLogger, runNode } from '../run-node.js';

export const summary = 'a whole single-machine cluster in one process, for trying Switchyard out';

/** The demo user's rights: read and write every channel. */
const DEV_PERMISSIONS = ['*:read', '*:write'];
const DEV_TOKEN_TTL_S = 24 * 3600;
/**
 * The demo pipeline of examples/ (stages with progress; fails on demand). The build copies it
 * into dist/, since an installed package has no examples/ beside it.
 */
const SHIPPED_PIPELINE = new URL('../demo-pipeline.mjs', import.meta.url);
export const DEMO_PIPELINE = fileURLToPath(
  existsSync(SHIPPED_PIPELINE) ? SHIPPED_PIPELINE : new URL('../../../../examples/pipeline/demo-pipeline.mjs', import.meta.url),
);
/** Dev defaults that differ from a production runner's: short retries, two jobs at a time. */
const DEV_RUNNER_DEFAULTS: Record<string, string> = { BASE_RETRY_DELAY: '2', RUNNER_CONCURRENCY: '2', SHUTDOWN_GRACE_S: '0' };

export async function dev(argv: string[]): Promise<void> {
  const { common } = parse(argv, {});
  const env = { ...common.env };
  const [edgeFile, runnerFile] = splitConfigFile(common.file, edgeSettings, runnerSettings);
  const set = (key: string) => (env[key] ?? '') !== '' || (common.file?.[key] ?? null) !== null;
  // Fill in what a first run lacks; anything the user set (environment or --config) wins.
  const randomSecret = !set('JWT_SECRET') && !set('JWT_PUBLIC_KEY') && !set('JWKS_URL');
  if (randomSecret) env['JWT_SECRET'] = randomBytes(32).toString('base64url');
  if (!set('DEV_TOKENS')) env['DEV_TOKENS'] = 'true';
  if (!set('BROADCAST_API_KEY')) env['BROADCAST_API_KEY'] = `dev-${randomBytes(12).toString('base64url')}`;
  if (!set('WORKER_ID')) env['WORKER_ID'] = 'dev-1';
  if (!set('PIPELINE_EXECUTABLE') && !set('BIOGPU_EXECUTABLE')) env['PIPELINE_EXECUTABLE'] = DEMO_PIPELINE;
  for (const [key, value] of Object.entries(DEV_RUNNER_DEFAULTS)) if (!set(key)) env[key] = value;
  const config = loadEdgeConfig({ env, file: edgeFile });
  const logger = makeLogger(config);
  const jobs = localJobs(config, env, runnerFile, logger);
  await runNode(config, { logger, ...jobs?.deps }, (node) => {
    const started = jobs?.start(node) ?? Promise.resolve();
    started.catch((err: unknown) => {
      logger.fatal({ err }, 'in-process job runner failed to start');
      process.exit(1);
    });
    if (config.jwtSecret === undefined) return;
    void Promise.all([started, mintToken(config.jwtSecret, { sub: 'dev-user', permissions: DEV_PERMISSIONS, ttlS: DEV_TOKEN_TTL_S })]).then(([, { token }]) => {
      const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
      const base = `${host}:${node.port}`;
      const where = config.kafkaServers !== undefined ? 'jobs on Kafka: start `switchyard runner` too' : jobs !== undefined ? 'in-process job runner' : 'no job runner';
      process.stderr.write(banner(base, token, config.broadcastApiKey ?? '<BROADCAST_API_KEY>', where, randomSecret));
    });
  });
}

function banner(base: string, token: string, broadcastKey: string, jobs: string, randomSecret: boolean): string {
  // Tokens minted under a random secret are refused after a restart; say so before anyone
  // wonders why a client (or a browser tab) is `failed` with auth_failed.
  const secretNote = randomSecret
    ? `
  JWT_SECRET is random for this run: tokens stop working when the node restarts (clients
  end in "failed" with auth_failed). To keep them, start it with a fixed secret:
       JWT_SECRET=${'$'}(openssl rand -base64 48) switchyard dev
  or hand the clients a new token (client.setToken).
`
    : '';
  return `
  Switchyard dev node on ws://${base}/ws  (${jobs}, DEV_TOKENS=true)
${secretNote}
  1. Connect (token for user "dev-user", valid 24 h):
       npx -y wscat -c 'ws://${base}/ws?token=${token}'
     then type:
       {"type":"subscribe","channel":"demo"}

  2. Broadcast to it from another terminal:
       curl -s -X POST http://${base}/broadcast -H 'Authorization: Bearer ${broadcastKey}' \\
         -H 'Content-Type: application/json' -d '{"channel":"demo","event":"hello","data":{"n":1}}'

  3. Run a demo job and watch it (pick a new job_id each time; "fail":"transient" or
     "fail":"permanent" in params shows retries and the dead-letter queue):
       curl -s -X POST http://${base}/jobs -H 'Authorization: Bearer ${token}' \\
         -H 'Content-Type: application/json' -d '{"job_id":"demo-1","sample_id":"S1","params":{"stages":4,"stage_ms":1000}}'
       npx -y wscat -c 'ws://${base}/ws?token=${token}' \\
         -x '{"type":"subscribe","job_id":"demo-1","since":0}' -w 30
     Status: curl -s http://${base}/jobs/demo-1 -H 'Authorization: Bearer ${token}'
     Cancel: curl -s -X DELETE http://${base}/jobs/demo-1 -H 'Authorization: Bearer ${token}'

  More tokens:  curl -s -X POST http://${base}/auth/token -d '{"user_id":"alice","channels":["demo"]}'
  Health:       curl -s http://${base}/health

`;
}
