import { ConfigError } from '@switchyard/config';
import { describe, expect, it } from 'vitest';
import { loadRunnerConfig, runnerSettings } from '../src/index.js';

const env = (e: Record<string, string>) => ({ env: e });
const KAFKA = { PIPELINE_EXECUTABLE: '/bin/true', KAFKA_SERVERS: '127.0.0.1:9092', REDIS_URL: 'redis://127.0.0.1:6379' };

function refused(e: Record<string, string>, setting: string, inProcess = false) {
  try {
    loadRunnerConfig(env(e), {}, { inProcess });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe(setting);
    return;
  }
  throw new Error(`expected ${setting} to be refused`);
}

describe('runner settings', () => {
  it('has the contract’s defaults', () => {
    const c = loadRunnerConfig(env(KAFKA));
    expect(c).toMatchObject({
      kafkaJobsTopic: 'new_jobs',
      kafkaRetryTopic: 'new_jobs.retry',
      kafkaDlqTopic: 'new_jobs.dlq',
      maxRetries: 3,
      baseRetryDelayS: 60,
      jobStatusTtlS: 86_400,
      runnerConcurrency: 1,
      gpuDevices: undefined,
    });
    expect(c.runnerId).toMatch(/-\d+$/);
  });

  it('accepts BIOGPU_EXECUTABLE, and a fractional BASE_RETRY_DELAY', () => {
    const c = loadRunnerConfig(env({ ...KAFKA, PIPELINE_EXECUTABLE: '', BIOGPU_EXECUTABLE: '/opt/biogpu', BASE_RETRY_DELAY: '0.05', GPU_DEVICES: '0,1' }));
    expect(c.pipelineExecutable).toBe('/opt/biogpu');
    expect(c.baseRetryDelayS).toBe(0.05);
    expect(c.gpuDevices).toEqual(['0', '1']);
  });

  it('refuses what cannot work, naming the setting', () => {
    refused({ ...KAFKA, PIPELINE_EXECUTABLE: '' }, 'PIPELINE_EXECUTABLE');
    refused({ PIPELINE_EXECUTABLE: '/bin/true' }, 'KAFKA_SERVERS');
    refused({ PIPELINE_EXECUTABLE: '/bin/true', KAFKA_SERVERS: 'k:9092' }, 'REDIS_URL');
    refused({ ...KAFKA, MAX_RETRIES: '-1' }, 'MAX_RETRIES');
    refused({ ...KAFKA, BASE_RETRY_DELAY: 'soon' }, 'BASE_RETRY_DELAY');
    refused({ ...KAFKA, KAFKA_JOBS_TOPIC: 'no spaces' }, 'KAFKA_JOBS_TOPIC');
    refused({ ...KAFKA, KAFKA_DLQ_TOPIC: 'new_jobs' }, 'KAFKA_DLQ_TOPIC');
    refused({ ...KAFKA, KAFKA_SESSION_TIMEOUT_MS: '3000', KAFKA_HEARTBEAT_INTERVAL_MS: '2000' }, 'KAFKA_HEARTBEAT_INTERVAL_MS');
    refused({ ...KAFKA, BASE_RETRY_DELAY: '100', MAX_RETRY_DELAY_S: '10' }, 'MAX_RETRY_DELAY_S');
  });

  it('needs neither Kafka nor Redis in process', () => {
    expect(loadRunnerConfig(env({ PIPELINE_EXECUTABLE: '/bin/true' }), {}, { inProcess: true }).kafkaServers).toBeUndefined();
    refused({}, 'PIPELINE_EXECUTABLE', true);
  });

  it('documents every setting', () => {
    for (const s of Object.values(runnerSettings)) expect(s.doc.length).toBeGreaterThan(10);
  });
});
