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
const DEV_HOST = '127.0.0.1';
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
  const generatedSecret = !set('JWT_SECRET') && !set('JWT_PUBLIC_KEY') && !set('JWKS_URL');
  if (generatedSecret) env['JWT_SECRET'] = randomBytes(32).toString('base64url');
  // A dev node is for this machine: reachable from elsewhere only when HOST says so.
  if (!set('HOST')) env['HOST'] = DEV_HOST;
  if (!set('CONSOLE')) env['CONSOLE'] = 'true';
  const generatedAdminKey = !set('ADMIN_API_KEY');
  if (generatedAdminKey) env['ADMIN_API_KEY'] = `dev-admin-${randomBytes(12).toString('base64url')}`;
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
      process.stderr.write(
        devBanner({
          base,
          token,
          broadcastKey: config.broadcastApiKey ?? '<BROADCAST_API_KEY>',
          jobs: where,
          console: config.console,
          adminKey: generatedAdminKey ? config.adminApiKey : undefined,
          generatedSecret,
        }),
      );
    });
  });
}

export interface BannerFacts {
  /** host:port as a browser on this machine reaches it. */
  base: string;
  token: string;
  broadcastKey: string;
  /** Where jobs run, in words. */
  jobs: string;
  console: boolean;
  /** The admin key, when dev generated it (a key the user set is theirs and is not echoed). */
  adminKey: string | undefined;
  /** JWT_SECRET was generated for this run: its tokens die with it. */
  generatedSecret: boolean;
}

/**
 * What a newcomer reads first. The token appears once, as a shell variable, and every line
 * after it uses the variable, so copying any of them works once the export has been pasted.
 */
export function devBanner(f: BannerFacts): string {
  const { base } = f;
  const secretNote = f.generatedSecret
    ? `\n  JWT_SECRET was generated for this run: tokens stop working when the node restarts (clients\n  end in "failed" with auth_failed). Set JWT_SECRET to keep them valid across restarts, e.g.\n       JWT_SECRET=$(openssl rand -base64 48) switchyard dev\n  or hand the clients a new token (client.setToken).\n`
    : '';
  const consoleLines = f.console
    ? `\n  Console:  http://${base}/console${f.adminKey !== undefined ? `   (admin key: ${f.adminKey})` : '   (admin key: your ADMIN_API_KEY)'}\n`
    : '';
  return `
  Switchyard dev node on ws://${base}/ws  (${f.jobs}, DEV_TOKENS=true)

  Your token (user "dev-user", valid 24 h); paste this line into your shell:
    export SWITCHYARD_TOKEN='${f.token}' SWITCHYARD_URL='http://${base}'
${secretNote}${consoleLines}
  1. Connect:
       npx -y wscat -c "ws://${base}/ws?token=$SWITCHYARD_TOKEN"
     then type:
       {"type":"subscribe","channel":"demo"}

  2. Broadcast to it from another terminal:
       curl -s -X POST http://${base}/broadcast -H 'Authorization: Bearer ${f.broadcastKey}' \\
         -H 'Content-Type: application/json' -d '{"channel":"demo","event":"hello","data":{"n":1}}'

  3. Run a demo job and watch its progress bar ("fail":"transient" or "fail":"permanent" in
     params shows retries and the dead-letter queue):
       pnpm switchyard submit --watch --sample S1 --params '{"stages":4,"stage_ms":1000}'
     or by hand (pick a new job_id each time):
       curl -s -X POST http://${base}/jobs -H "Authorization: Bearer $SWITCHYARD_TOKEN" \\
         -H 'Content-Type: application/json' -d '{"job_id":"demo-1","sample_id":"S1","params":{"stages":4,"stage_ms":1000}}'
       npx -y wscat -c "ws://${base}/ws?token=$SWITCHYARD_TOKEN" \\
         -x '{"type":"subscribe","job_id":"demo-1","since":0}' -w 30
     Status: curl -s http://${base}/jobs/demo-1 -H "Authorization: Bearer $SWITCHYARD_TOKEN"
     Cancel: curl -s -X DELETE http://${base}/jobs/demo-1 -H "Authorization: Bearer $SWITCHYARD_TOKEN"

  More tokens:  curl -s -X POST http://${base}/auth/token -d '{"user_id":"alice","channels":["demo"]}'
  Health:       curl -s http://${base}/health

`;
}
