import { loadEdgeConfig } from '@switchyard/edge';
import { parse } from '../args.js';
import { makeLogger, runNode } from '../run-node.js';

export const summary = 'run an edge node (WebSocket + HTTP)';

export async function edge(argv: string[]): Promise<void> {
  const { common } = parse(argv, {});
  const config = loadEdgeConfig({ env: common.env, file: common.file });
  await runNode(config, { logger: makeLogger(config) });
}
