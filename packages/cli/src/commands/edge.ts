import { edgeSettings, loadEdgeConfig } from '@switchyard/edge';
import { runnerSettings } from '@switchyard/runner';
import { parse } from '../args.js';
import { localJobs, splitConfigFile } from '../local-jobs.js';
import { makeLogger, runNode } from '../run-node.js';

export const summary = 'run an edge node (WebSocket + HTTP)';

export async function edge(argv: string[]): Promise<void> {
  const { common } = parse(argv, {});
  const [edgeFile, runnerFile] = splitConfigFile(common.file, edgeSettings, runnerSettings);
  const config = loadEdgeConfig({ env: common.env, file: edgeFile });
  const logger = makeLogger(config);
  // Without KAFKA_SERVERS, a lone node with a PIPELINE_EXECUTABLE runs jobs in process.
  const jobs = localJobs(config, common.env, runnerFile, logger);
  await runNode(config, { logger, ...jobs?.deps }, (node) => {
    jobs?.start(node).catch((err: unknown) => {
      logger.fatal({ err }, 'in-process job runner failed to start');
      process.exit(1);
    });
  });
}
