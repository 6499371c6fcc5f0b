import { ensureApt, pythonWebsockets, redisServer } from './system.js';

/** Runs once per integration run: system packages the suites use. */
export default function setup(): void {
  ensureApt([pythonWebsockets, redisServer]);
}
