import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, bool, describeSettings, int, list, loadSettings, num, oneOf, readConfigFile, str } from '../src/index.js';

/** Loads one setting from the environment (or a file) and returns its value. */
function one<T>(setting: { env: string; default: T; doc: string; parse(raw: unknown): T }, env?: string, file?: unknown): T {
  const sources = {
    env: env === undefined ? {} : { [setting.env]: env },
    file: file === undefined ? {} : { [setting.env]: file },
  };
  return loadSettings({ value: setting }, sources).value as T;
}

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('int', () => {
  const port = int('PORT', 8765, 'port', { min: 0, max: 65535 });

  it('parses integers from strings and numbers', () => {
    expect(one(port, '80')).toBe(80);
    expect(one(port, ' 443 ')).toBe(443);
    expect(one(port, '0')).toBe(0);
    expect(one(port, undefined, 9000)).toBe(9000);
    expect(one(port, undefined, '9001')).toBe(9001);
  });

  it('refuses non-numbers, fractions and values out of range, naming the setting', () => {
    for (const raw of ['abc', '12abc', '1.5', 'Infinity', 'NaN', '-1', '65536']) {
      const err = refusal(() => one(port, raw));
      expect(err.setting, raw).toBe('PORT');
      expect(err.message).toContain('PORT');
      expect(err.name).toBe('ConfigError');
      expect(err.code).toBe('config_invalid');
    }
    for (const raw of [true, [1], { n: 1 }, 1.25, '']) {
      expect(refusal(() => one(port, undefined, raw)).setting, JSON.stringify(raw)).toBe('PORT');
    }
  });

  it('says why in the reason', () => {
    expect(refusal(() => one(port, '70000')).reason).toMatch(/at most 65535/);
    expect(refusal(() => one(port, '-3')).reason).toMatch(/at least 0/);
    expect(refusal(() => one(port, '2.5')).reason).toMatch(/integer/);
  });
});

describe('num', () => {
  it('accepts fractions within range', () => {
    const ratio = num('RATIO', 0.5, 'ratio', { min: 0, max: 1 });
    expect(one(ratio, '0.25')).toBe(0.25);
    expect(one(ratio)).toBe(0.5);
    expect(refusal(() => one(ratio, '1.5')).setting).toBe('RATIO');
  });
});

describe('bool', () => {
  const flag = bool('DEV_TOKENS', false, 'flag');

  it('reads the usual spellings', () => {
    for (const raw of ['1', 'true', 'TRUE', 'True', 'yes', 'on', ' true ']) expect(one(flag, raw), raw).toBe(true);
    for (const raw of ['0', 'false', 'FALSE', 'no', 'off']) expect(one(flag, raw), raw).toBe(false);
    expect(one(flag, undefined, true)).toBe(true);
    expect(one(bool('X', true, 'x'), undefined, false)).toBe(false);
  });

  it('refuses anything else, naming the setting', () => {
    for (const raw of ['maybe', '2', 'ja', 'truee']) {
      const err = refusal(() => one(flag, raw));
      expect(err.setting).toBe('DEV_TOKENS');
      expect(err.reason).toMatch(/true or false/);
    }
  });
});

describe('list', () => {
  const origins = list('ALLOWED_ORIGINS', 'origins');

  it('splits a comma list, trimming and dropping empty items', () => {
    expect(one(origins, 'https://a.example, https://b.example')).toEqual(['https://a.example', 'https://b.example']);
    expect(one(origins, 'a,,b,')).toEqual(['a', 'b']);
    expect(one(origins, 'single')).toEqual(['single']);
  });

  it('is undefined when unset or when nothing is left', () => {
    expect(one(origins)).toBeUndefined();
    expect(one(origins, ' , ,')).toBeUndefined();
    expect(one(origins, undefined, [])).toBeUndefined();
  });

  it('takes an array from a file and refuses other types', () => {
    expect(one(origins, undefined, ['x', ' y '])).toEqual(['x', 'y']);
    expect(refusal(() => one(origins, undefined, 5)).setting).toBe('ALLOWED_ORIGINS');
    expect(refusal(() => one(origins, undefined, { a: 1 })).setting).toBe('ALLOWED_ORIGINS');
  });
});

describe('str and oneOf', () => {
  it('returns strings as given and applies the check', () => {
    const url = str('JWKS_URL', undefined, 'url', (v) => (v.startsWith('https://') ? undefined : 'must be an https URL'));
    expect(one(url)).toBeUndefined();
    expect(one(url, 'https://idp.example/jwks')).toBe('https://idp.example/jwks');
    const err = refusal(() => one(url, 'ftp://x'));
    expect(err).toMatchObject({ setting: 'JWKS_URL', reason: 'must be an https URL' });
    expect(err.message).toBe('invalid configuration: JWKS_URL must be an https URL');
  });

  it('refuses non-strings from a file', () => {
    const host = str('HOST', '0.0.0.0', 'host');
    expect(one(host)).toBe('0.0.0.0');
    expect(refusal(() => one(host, undefined, 127001)).setting).toBe('HOST');
  });

  it('oneOf accepts only the listed values', () => {
    const level = oneOf('LOG_LEVEL', 'info', ['debug', 'info', 'warn'], 'level');
    expect(one(level)).toBe('info');
    expect(one(level, 'warn')).toBe('warn');
    const err = refusal(() => one(level, 'loud'));
    expect(err.setting).toBe('LOG_LEVEL');
    expect(err.reason).toContain('debug, info, warn');
    expect(refusal(() => one(level, 'WARN')).setting).toBe('LOG_LEVEL');
  });
});

describe('loadSettings', () => {
  const spec = {
    port: int('PORT', 8765, 'port'),
    host: str('HOST', '0.0.0.0', 'host'),
    dev: bool('DEV_TOKENS', false, 'dev'),
  };

  it('takes the environment over the file over the default', () => {
    expect(loadSettings(spec)).toEqual({ port: 8765, host: '0.0.0.0', dev: false });
    expect(loadSettings(spec, { file: { PORT: 9000, DEV_TOKENS: true } })).toEqual({ port: 9000, host: '0.0.0.0', dev: true });
    expect(loadSettings(spec, { env: { PORT: '9100' }, file: { PORT: 9000, HOST: '127.0.0.1' } })).toEqual({
      port: 9100,
      host: '127.0.0.1',
      dev: false,
    });
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadSettings(spec, { env: { PORT: '' }, file: { PORT: 9000 } }).port).toBe(9000);
    expect(loadSettings(spec, { env: { PORT: '' } }).port).toBe(8765);
  });

  it('treats null in the file as unset', () => {
    expect(loadSettings(spec, { file: { PORT: null } }).port).toBe(8765);
  });

  it('ignores unrelated environment variables', () => {
    expect(loadSettings(spec, { env: { PATH: '/usr/bin', SOMETHING_ELSE: 'x' } }).port).toBe(8765);
  });

  it('refuses unknown keys in a file, naming the key', () => {
    const err = refusal(() => loadSettings(spec, { file: { PORT: 1, PROT: 2 } }));
    expect(err.setting).toBe('PROT');
    expect(err.message).toContain('PROT');
    // Field names are not keys: files use the environment names.
    expect(refusal(() => loadSettings(spec, { file: { port: 1 } })).setting).toBe('port');
  });

  it('names the setting whose value is bad, whichever source it came from', () => {
    expect(refusal(() => loadSettings(spec, { env: { DEV_TOKENS: 'perhaps' } })).setting).toBe('DEV_TOKENS');
    expect(refusal(() => loadSettings(spec, { file: { PORT: 'eighty' } })).setting).toBe('PORT');
  });

  it('lets a parse error that is not a validation failure through unchanged', () => {
    const boom = new TypeError('bug');
    const broken = { x: { env: 'X', default: 1, doc: 'x', parse: () => { throw boom; } } };
    expect(() => loadSettings(broken, { env: { X: '1' } })).toThrow(boom);
  });
});

describe('readConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads a JSON object', () => {
    expect(readConfigFile(write('ok.json', '{"PORT": 9000, "DEV_TOKENS": true}'))).toEqual({ PORT: 9000, DEV_TOKENS: true });
  });

  it('refuses a missing file, bad JSON and JSON that is not an object, as --config', () => {
    for (const path of [join(dir, 'missing.json'), write('bad.json', '{PORT: 1}'), write('array.json', '[1]'), write('null.json', 'null')]) {
      const err = refusal(() => readConfigFile(path));
      expect(err.setting, path).toBe('--config');
      expect(err.message).toContain(path);
    }
  });
});

describe('describeSettings', () => {
  it('renders a Markdown table with defaults, "shown" overrides and a dash for no default', () => {
    const table = describeSettings({
      port: int('PORT', 8765, 'TCP port'),
      bytes: int('MAX_BYTES', 1_048_576, 'bytes', { shown: '1 MiB' }),
      key: str('API_KEY', undefined, 'a key'),
      dev: bool('DEV', false, 'dev mode'),
    });
    expect(table).toBe(
      [
        '| setting | default | meaning |',
        '| --- | --- | --- |',
        '| `PORT` | `8765` | TCP port |',
        '| `MAX_BYTES` | 1 MiB | bytes |',
        '| `API_KEY` | — | a key |',
        '| `DEV` | `false` | dev mode |',
      ].join('\n'),
    );
  });
});
