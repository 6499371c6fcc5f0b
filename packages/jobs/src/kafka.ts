import { createRequire } from 'node:module';
import type * as KafkaJs from 'kafkajs';
import type { Admin, ITopicConfig, Kafka, LogEntry } from 'kafkajs';
import { NOOP_LOGGER, type JobLogger } from './logger.js';

let loaded: typeof KafkaJs | undefined;

/** Headers of a job message on the retry topic (or any job message run again). */
export const HEADER_ATTEMPT = 'x-attempt';
export const HEADER_NOT_BEFORE = 'x-not-before';
export const HEADER_ERROR = 'x-error';
export const HEADER_CLASS = 'x-class';

/** kafkajs, loaded on first use: a node that runs without Kafka never pays for loading it. */
export function kafkajs(): typeof KafkaJs {
  loaded ??= createRequire(import.meta.url)('kafkajs') as typeof KafkaJs;
  return loaded;
}

export interface KafkaOptions {
  brokers: readonly string[];
  clientId: string;
  logger?: JobLogger;
  /**
   * Connection timeout per broker.
   * @default 3000
   */
  connectionTimeoutMs?: number;
}

const DEFAULT_CONNECTION_TIMEOUT_MS = 3000;

/**
 * A kafkajs client whose log lines go to our logger (kafkajs would print to the console):
 * errors and warnings as such, its chatty info lines at debug.
 */
export function createKafka(options: KafkaOptions): Kafka {
  const log = options.logger ?? NOOP_LOGGER;
  const { Kafka, logLevel } = kafkajs();
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        const obj = { component: 'kafka', namespace, ...rest } as Record<string, unknown>;
        delete obj['timestamp'];
        delete obj['logger'];
        if (level === logLevel.ERROR) log.error(obj, message);
        else if (level === logLevel.WARN) log.warn(obj, message);
        else log.debug(obj, message);
      },
  });
}

/** Kafka's own rule for topic names. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export function checkTopicName(name: string): string | undefined {
  return TOPIC_NAME.test(name) && name !== '.' && name !== '..' ? undefined : 'must be 1–249 characters of A-Z a-z 0-9 . _ -';
}

/**
 * Creates the topics that do not exist yet (and waits for their leaders). A topic that
 * exists is left as it is, whatever its partition count.
 */
export async function ensureTopics(admin: Admin, topics: readonly ITopicConfig[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: [...missing], waitForLeaders: true });
  } catch (err) {
    // Another runner created them at the same moment.
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
}
