import { chromium, ensureApt, haproxy, nginx, openssl, pythonWebsockets, redisServer } from './system.js';
import { fetchKafka, javaAndMaven } from './kafka.js';

/** Runs once per integration run: system packages the suites use. */
export default function setup(): void {
  ensureApt([pythonWebsockets, redisServer, nginx, haproxy, openssl, chromium]);
  // Kafka's jars for the job tests, fetched with mvn into .cache/kafka/ on the first run only.
  ensureApt([javaAndMaven]);
  fetchKafka();
}
