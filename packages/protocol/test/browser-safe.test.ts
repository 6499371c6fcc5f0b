/**
 * The client SDK imports this package into browser bundles, so nothing in it may need Node:
 * no `node:` or bare built-in imports, no Node globals, and no dependencies at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CloseCode, jobChannel, jobChannelName } from '../src/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

describe('@switchyard/protocol is safe for a browser bundle', () => {
  it('imports nothing but its own modules and uses no Node globals', () => {
    const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      const text = readFileSync(join(SRC, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
        const spec = m[1]!;
        expect(spec, `${file} imports ${spec}`).toMatch(/^\.\/[a-z-]+\.js$/);
        expect(builtinModules).not.toContain(spec);
      }
      expect(text, file).not.toMatch(/\b(Buffer|process|require|__dirname)\b[.(]/);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg['dependencies'] ?? {}).toEqual({});
    expect(pkg['sideEffects']).toBe(false);
  });

  it('names every close code the docs list, and the job channel unchecked or checked', () => {
    expect(CloseCode).toMatchObject({ Abnormal: 1006, InternalError: 1011, Restart: 1012, SessionTakenOver: 4011 });
    expect(jobChannelName('a b')).toBe('job:a b');
    expect(jobChannel('a b')).toBeUndefined();
    expect(jobChannel('j1')).toBe(jobChannelName('j1'));
  });
});
