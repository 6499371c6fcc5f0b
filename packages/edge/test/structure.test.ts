import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAX_LINES = 600;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Relative imports and re-exports of one file, type-only ones too (a cycle of types is still a knot to untie). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
}

/** Every cycle found by a depth-first walk, as `a.ts -> b.ts -> a.ts`. */
function importCycles(files: string[], base: string): string[] {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(base, f)).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

describe('source structure', () => {
  const packages = readdirSync(join(root, 'packages')).filter((p) => statSync(join(root, 'packages', p, 'src'), { throwIfNoEntry: false })?.isDirectory());

  it.each(packages)('packages/%s/src has no import cycle', (pkg) => {
    const src = join(root, 'packages', pkg, 'src');
    expect(importCycles(sources(src), src)).toEqual([]);
  });

  it(`no file in packages/edge/src is over ${MAX_LINES} lines`, () => {
    const src = join(root, 'packages/edge/src');
    const long = sources(src)
      .map((f) => ({ file: relative(src, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((f) => f.lines > MAX_LINES);
    expect(long).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    // The checker itself: two fixtures importing each other must be reported.
    const dir = join(root, 'packages/edge/test/fixtures/cycle');
    expect(importCycles(sources(dir), dir)).toEqual(['a.ts -> b.ts -> a.ts']);
  });
});
