import { EdgeNode, type EdgeConfig, type EdgeDeps } from '@switchyard/edge';
import { pino, type Logger } from 'pino';

export function makeLogger(config: Pick<EdgeConfig, 'logLevel' | 'workerId'>): Logger {
  return pino({ level: config.logLevel, base: { worker_id: config.workerId } });
}

/**
 * Starts a node and ties it to the process: SIGTERM/SIGINT drain it, a second signal
 * stops it at once. The process exits when the node has stopped.
 */
export async function runNode(config: EdgeConfig, deps: EdgeDeps & { logger: Logger }, onReady?: (node: EdgeNode) => void): Promise<void> {
  const node = new EdgeNode(config, deps);
  const log = deps.logger;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    log.info({ signal }, signals === 1 ? 'signal: draining' : 'signal: stopping now');
    const done = signals === 1 ? node.drain() : node.stop();
    void done.then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await node.start();
  onReady?.(node);
}
