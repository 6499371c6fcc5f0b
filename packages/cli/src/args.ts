import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, readConfigFile } from '@switchyard/config';
import { SwitchyardError } from '@switchyard/protocol';

/** A command line that cannot be run: the CLI prints it with the usage (EXIT_USAGE). */
export class UsageError extends SwitchyardError<'usage'> {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('usage', message);
  }
}

export interface CommonArgs {
  /** Values from `--config file.json`, keyed like the environment. */
  file: Record<string, unknown> | undefined;
  /** The environment with `--log-level` folded in as LOG_LEVEL. */
  env: NodeJS.ProcessEnv;
}

const COMMON = {
  config: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses a subcommand's flags plus the ones every subcommand takes (`--config`, `--log-level`). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Record<string, unknown>;
  const file = typeof values['config'] === 'string' ? readConfigFile(values['config']) : undefined;
  const env = { ...process.env };
  if (typeof values['log-level'] === 'string') env['LOG_LEVEL'] = values['log-level'];
  return { values: parsed.values, positionals: parsed.positionals, common: { file, env } as CommonArgs };
}

export function csv(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export { ConfigError };
