import { ConfigError, type SettingsSpec } from '@switchyard/config';
import { createClusterParts, type EdgeConfig, type EdgeDeps, type EdgeNode } from '@switchyard/edge';
import { inProcessJobs, loadRunnerConfig } from '@switchyard/runner';
import type { Logger } from 'pino';

/**
 * Splits a `--config` file between several settings tables: each gets the keys it knows,
 * and a key that none knows is refused (a misspelt key must not pass silently).
 */
export function splitConfigFile(file: Record<string, unknown> | undefined, ...specs: SettingsSpec[]): (Record<string, unknown> | undefined)[] {
  if (file === undefined) return specs.map(() => undefined);
  const known = specs.map((spec) => new Set(Object.values(spec).map((s) => s.env)));
  for (const key of Object.keys(file)) {
    if (!known.some((k) => k.has(key))) throw new ConfigError(key, 'is not a known setting (config file keys are the environment names)');
  }
  return known.map((k) => Object.fromEntries(Object.entries(file).filter(([key]) => k.has(key))));
}

export interface LocalJobs {
  /** What the node is built with: its cluster parts (shared with the runner) and the job API. */
  deps: Pick<EdgeDeps, 'broker' | 'sessions' | 'registry' | 'jobs'>;
  /** Starts the in-process runner once the node is up (its metrics join the node's). */
  start(node: EdgeNode): Promise<void>;
}

/**
 * A lone node without KAFKA_SERVERS runs jobs in process (PROTOCOL.md §7) when it has a
 * pipeline to run (PIPELINE_EXECUTABLE or BIOGPU_EXECUTABLE). Undefined otherwise: with Kafka
 * the node builds its own Kafka-backed job API; without a pipeline, `/jobs` answers 503.
 */
export function localJobs(config: EdgeConfig, env: NodeJS.ProcessEnv, file: Record<string, unknown> | undefined, logger: Logger): LocalJobs | undefined {
  if (config.kafkaServers !== undefined) return undefined;
  const fromFile = (key: string) => file?.[key] !== undefined && file[key] !== null;
  const hasPipeline = ['PIPELINE_EXECUTABLE', 'BIOGPU_EXECUTABLE'].some((k) => (env[k] ?? '') !== '' || fromFile(k));
  if (!hasPipeline) return undefined;
  const runnerConfig = loadRunnerConfig({ env, file }, {}, { inProcess: true });
  const parts = createClusterParts(config, logger);
  const jobs = inProcessJobs(runnerConfig, parts.broker, logger.child({ component: 'jobs' }));
  return {
    deps: { ...parts, jobs: jobs.service },
    async start(node) {
      await jobs.start({ registry: node.metrics.registry, jobs: node.metrics.jobs });
    },
  };
}
