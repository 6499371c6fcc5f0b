import { loadRunnerConfig, startRunner, type RunnerProcess } from '@switchyard/runner';
import { pino } from 'pino';
import { parse } from '../args.js';

export const summary = 'run a job runner (Kafka consumer group; one pipeline process per job)';

/**
 * `switchyard runner`: consumes KAFKA_JOBS_TOPIC and runs PIPELINE_EXECUTABLE per job.
 * SIGTERM/SIGINT: stop taking jobs, let running ones finish for SHUTDOWN_GRACE_S, hand the
 * rest back, leave the group, exit 0. A second signal hands everything back at once.
 */
export async function runner(argv: string[]): Promise<void> {
  const { common } = parse(argv, {});
  const config = loadRunnerConfig({ env: common.env, file: common.file });
  const logger = pino({ level: config.logLevel, base: { runner_id: config.runnerId } });
  let fatal = false;
  let started: RunnerProcess | undefined;
  const proc = await startRunner(config, logger, {
    onFatal: (err) => {
      if (fatal) return;
      fatal = true;
      logger.fatal({ err }, 'the Kafka consumer stopped for good; exiting so the runner is restarted');
      void (started?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
    },
  });
  started = proc;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal }, 'signal: stopping (finishing or handing back running jobs)');
      void proc.stop().then(() => process.exit(0));
    } else {
      logger.info({ signal }, 'signal: handing back every running job now');
      proc.runner.hurry();
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
