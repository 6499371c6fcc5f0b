/**
 * Environments for the children the tests start (edges, runners, the CLI, pipelines).
 *
 * A child gets only what a process needs to run at all (from the allow-list below) plus the
 * settings the test names. Nothing else leaks in from the shell that runs the suite: with
 * `REDIS_URL` or `KAFKA_SERVERS` set there, a single-node test would otherwise silently join a
 * shared Redis or broker and test something other than it claims.
 */
export const INHERITED_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'TMP',
  'TEMP',
  'TERM',
  // Node's own switches (e.g. a --max-old-space-size the runner of the suite chose) and its CA list.
  'NODE_OPTIONS',
  'NODE_EXTRA_CA_CERTS',
  // tsx runs the sources; its cache and tsconfig choices are the suite's, not the product's.
  'TSX_TSCONFIG_PATH',
  'TSX_DISABLE_CACHE',
  // The Kafka harness's broker and python clients look these up.
  'JAVA_HOME',
] as const;

/**
 * The allow-listed part of this process's environment, then `settings` on top; a setting whose
 * value is `undefined` is left out even when the allow-list would carry it.
 */
export function childEnv(...settings: Array<Record<string, string | undefined>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  for (const layer of settings) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
  }
  return env;
}
