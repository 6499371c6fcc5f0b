import { randomBytes } from 'node:crypto';
import { loadEdgeConfig, mintToken } from '@switchyard/edge';
import { parse } from '../args.js';
import { makeLogger, runNode } from '../run-node.js';

export const summary = 'a whole single-machine cluster in one process, for trying Switchyard out';

/** The demo user's rights: read and write every channel. */
const DEV_PERMISSIONS = ['*:read', '*:write'];
const DEV_TOKEN_TTL_S = 24 * 3600;

export async function dev(argv: string[]): Promise<void> {
  const { common } = parse(argv, {});
  const env = { ...common.env };
  // Fill in what a first run lacks; anything the user set wins.
  env['JWT_SECRET'] ??= randomBytes(32).toString('base64url');
  env['DEV_TOKENS'] ??= 'true';
  env['BROADCAST_API_KEY'] ??= `dev-${randomBytes(12).toString('base64url')}`;
  env['WORKER_ID'] ??= 'dev-1';
  const config = loadEdgeConfig({ env, file: common.file });
  await runNode(config, { logger: makeLogger(config) }, (node) => {
    void mintToken(config.jwtSecret!, { sub: 'dev-user', permissions: DEV_PERMISSIONS, ttlS: DEV_TOKEN_TTL_S }).then(({ token }) => {
      const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
      const base = `${host}:${node.port}`;
      process.stderr.write(banner(base, token, config.broadcastApiKey!));
    });
  });
}

function banner(base: string, token: string, broadcastKey: string): string {
  return `
  Switchyard dev node on ws://${base}/ws  (in-memory broker, DEV_TOKENS=true)

  1. Connect (token for user "dev-user", valid 24 h):
       npx -y wscat -c 'ws://${base}/ws?token=${token}'
     then type:
       {"type":"subscribe","channel":"demo"}

  2. Broadcast to it from another terminal:
       curl -s -X POST http://${base}/broadcast -H 'Authorization: Bearer ${broadcastKey}' \\
         -H 'Content-Type: application/json' -d '{"channel":"demo","event":"hello","data":{"n":1}}'

  More tokens:  curl -s -X POST http://${base}/auth/token -d '{"user_id":"alice","channels":["demo"]}'
  Health:       curl -s http://${base}/health

`;
}
