import { SwitchyardError } from '@switchyard/protocol';
import { readFileSync } from 'node:fs';

/**
 * A setting is read from one environment variable (or the same key in a `--config` JSON
 * file), parsed once at start-up, and rejected there with an error that names it.
 */
export interface Setting<T> {
  readonly env: string;
  readonly default: T;
  readonly doc: string;
  /** Receives the raw value (a string from the environment, any JSON value from a file). */
  parse(raw: unknown): T;
  /** How the default reads in docs. */
  readonly shown?: string;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type SettingsOf<S extends SettingsSpec> = { -readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export class ConfigError extends SwitchyardError<'config_invalid'> {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    readonly reason: string,
  ) {
    super('config_invalid', `invalid configuration: ${setting} ${reason}`);
  }
}

class Invalid extends Error {}

interface NumberOpts {
  min?: number;
  max?: number;
  shown?: string;
}

function toNumber(raw: unknown, integer: boolean, opts: NumberOpts): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new Invalid(`must be a number, got ${JSON.stringify(raw)}`);
  if (integer && !Number.isInteger(n)) throw new Invalid(`must be an integer, got ${JSON.stringify(raw)}`);
  if (opts.min !== undefined && n < opts.min) throw new Invalid(`must be at least ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw new Invalid(`must be at most ${opts.max}, got ${n}`);
  return n;
}

export function int(env: string, def: number, doc: string, opts: NumberOpts = {}): Setting<number> {
  return { env, default: def, doc, shown: opts.shown, parse: (raw) => toNumber(raw, true, opts) };
}

export function num(env: string, def: number, doc: string, opts: NumberOpts = {}): Setting<number> {
  return { env, default: def, doc, shown: opts.shown, parse: (raw) => toNumber(raw, false, opts) };
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

export function bool(env: string, def: boolean, doc: string): Setting<boolean> {
  return {
    env,
    default: def,
    doc,
    parse(raw) {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (TRUE.has(s)) return true;
      if (FALSE.has(s)) return false;
      throw new Invalid(`must be true or false, got ${JSON.stringify(raw)}`);
    },
  };
}

export function str<T extends string | undefined = string | undefined>(
  env: string,
  def: T,
  doc: string,
  check?: (value: string) => string | undefined,
): Setting<T | string> {
  return {
    env,
    default: def,
    doc,
    parse(raw) {
      if (typeof raw !== 'string') throw new Invalid(`must be a string, got ${JSON.stringify(raw)}`);
      const why = check?.(raw);
      if (why !== undefined) throw new Invalid(why);
      return raw;
    },
  };
}

export function oneOf<const T extends string>(env: string, def: T, values: readonly T[], doc: string): Setting<T> {
  return {
    env,
    default: def,
    doc,
    parse(raw) {
      if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as T;
      throw new Invalid(`must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    },
  };
}

/** A comma-separated list in the environment, or an array in a file. */
export function list(env: string, doc: string): Setting<string[] | undefined> {
  return {
    env,
    default: undefined,
    doc,
    parse(raw) {
      const items = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(',') : null;
      if (items === null) throw new Invalid(`must be a comma-separated list, got ${JSON.stringify(raw)}`);
      const cleaned = items.map((s) => s.trim()).filter((s) => s !== '');
      return cleaned.length === 0 ? undefined : cleaned;
    },
  };
}

export interface SettingsSources {
  env?: NodeJS.ProcessEnv;
  /** Values from a `--config` file, keyed by the same names as the environment. */
  file?: Record<string, unknown>;
}

/**
 * Resolves every setting: environment over file over default. Unknown keys in a file are
 * refused, since a misspelt key silently falling back to its default is the worst outcome.
 */
export function loadSettings<S extends SettingsSpec>(spec: S, sources: SettingsSources = {}): SettingsOf<S> {
  const env = sources.env ?? {};
  const file = sources.file ?? {};
  const known = new Set(Object.values(spec).map((s) => s.env));
  for (const key of Object.keys(file)) {
    if (!known.has(key)) throw new ConfigError(key, 'is not a known setting (config file keys are the environment names)');
  }
  const out: Record<string, unknown> = {};
  for (const [field, setting] of Object.entries(spec)) {
    const fromEnv = env[setting.env];
    const raw = fromEnv !== undefined && fromEnv !== '' ? fromEnv : file[setting.env];
    if (raw === undefined || raw === null) {
      out[field] = setting.default;
      continue;
    }
    try {
      out[field] = setting.parse(raw);
    } catch (err) {
      if (err instanceof Invalid) throw new ConfigError(setting.env, err.message);
      throw err;
    }
  }
  return out as SettingsOf<S>;
}

/** Reads a `--config` file: a JSON object whose keys are setting names. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('--config', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('--config', `${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A Markdown table of the settings, for docs. */
export function describeSettings(spec: SettingsSpec): string {
  const rows = Object.values(spec).map((s) => {
    const def = s.shown ?? (s.default === undefined ? '—' : `\`${String(s.default)}\``);
    return `| \`${s.env}\` | ${def} | ${s.doc} |`;
  });
  return ['| setting | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
