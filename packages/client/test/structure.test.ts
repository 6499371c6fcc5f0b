/**
 * The SDK's shape: the connection, the subscription manager and the facade stay apart — no
 * file imports another in a loop, none grows past 600 lines — and the wire vocabulary comes
 * from @switchyard/protocol rather than a copy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../src');
const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
const text = new Map(files.map((f) => [f, readFileSync(join(SRC, f), 'utf8')]));
const importsOf = (file: string) => [...text.get(file)!.matchAll(/from '\.\/([^']+)\.js'/g)].map((m) => `${m[1]}.ts`);

/** Every loop in the graph of relative imports, each as the path that closes it. */
function cycles(): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const visit = (file: string, path: string[]) => {
    state.set(file, 'open');
    for (const next of importsOf(file)) {
      if (state.get(next) === 'open') found.push([...path, next].join(' → '));
      else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(file, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f, [f]);
  return found;
}

describe('the client SDK source', () => {
  it('has no import cycles, and no file over 600 lines', () => {
    expect(files).toEqual(expect.arrayContaining(['client.ts', 'connection.ts', 'subscriptions.ts']));
    expect(cycles()).toEqual([]);
    for (const [file, body] of text) expect(body.split('\n').length, file).toBeLessThanOrEqual(600);
  });

  it('takes frame types and codes from @switchyard/protocol, with no copy of its own', () => {
    expect(files).not.toContain('frames.ts');
    for (const [file, body] of text) {
      expect(body, file).not.toMatch(/SlowConsumer:\s*4010|AuthFailed:\s*4001/);
      expect(body, file).not.toMatch(/interface (EventFrame|SubscriptionResultFrame|AuthSuccessFrame)\b/);
    }
    expect(text.get('connection.ts')).toContain("from '@switchyard/protocol'");
  });
});
