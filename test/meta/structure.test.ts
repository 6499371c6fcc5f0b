import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

/**
 * The shape rules of docs/architecture.md, kept by the suite: no source file over 600 lines, no
 * files (and no packages) that import each other in a loop. The allow-lists name what is known
 * to break a rule today, so that nothing new does; each entry goes when its file is split.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const PACKAGES = join(ROOT, 'packages');
const MAX_LINES = 600;

/** Over MAX_LINES today: none. Keep it so. */
const TOO_LONG_ALLOWED = new Set<string>();

/** Import cycles known today, as madge reports them: none. Keep it so. */
const CYCLES_ALLOWED = new Set<string>();

function sourceDirs(): string[] {
  return readdirSync(PACKAGES)
    .map((p) => join(PACKAGES, p, 'src'))
    .filter((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory() === true);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return /\.tsx?$/.test(e.name) ? [path] : [];
  });
}

describe('source structure', () => {
  it(`has no file in packages/*/src over ${MAX_LINES} lines`, () => {
    const long = sourceDirs()
      .flatMap(tsFiles)
      .map((f) => ({ file: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > MAX_LINES && !TOO_LONG_ALLOWED.has(f.file));
    expect(long).toEqual([]);
  });

  it('has no import cycle between files of packages/*/src', { timeout: 60_000 }, async () => {
    const graph = await madge(sourceDirs(), {
      baseDir: PACKAGES,
      fileExtensions: ['ts', 'tsx'],
      tsConfig: join(ROOT, 'tsconfig.json'),
      // Type-only imports count too: a loop of types is still two files that need each other.
      detectiveOptions: { ts: { skipTypeImports: false }, tsx: { skipTypeImports: false } },
    });
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(50);
    const cycles = graph.circular().map((c) => c.join(' > '));
    expect(cycles.filter((c) => !CYCLES_ALLOWED.has(c))).toEqual([]);
  });

  it('has no cycle between packages, and each package declares the workspace packages it imports', () => {
    const deps = new Map<string, Set<string>>();
    const undeclared: string[] = [];
    for (const name of readdirSync(PACKAGES)) {
      const manifestPath = join(PACKAGES, name, 'package.json');
      if (statSync(manifestPath, { throwIfNoEntry: false }) === undefined) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name: string; dependencies?: Record<string, string> };
      const declared = new Set(Object.keys(manifest.dependencies ?? {}));
      const used = new Set<string>();
      const src = join(PACKAGES, name, 'src');
      if (statSync(src, { throwIfNoEntry: false })?.isDirectory() !== true) continue;
      for (const file of tsFiles(src)) {
        for (const m of readFileSync(file, 'utf8').matchAll(/from '(@switchyard\/[a-z-]+)/g)) {
          const dep = m[1]!;
          if (dep === manifest.name) continue;
          used.add(dep);
          if (!declared.has(dep)) undeclared.push(`${relative(ROOT, file)} imports ${dep}`);
        }
      }
      deps.set(manifest.name, used);
    }
    expect(undeclared).toEqual([]);
    const loops: string[] = [];
    const visit = (pkg: string, path: string[]): void => {
      if (path.includes(pkg)) {
        loops.push([...path.slice(path.indexOf(pkg)), pkg].join(' > '));
        return;
      }
      for (const d of deps.get(pkg) ?? []) visit(d, [...path, pkg]);
    };
    for (const pkg of deps.keys()) visit(pkg, []);
    expect(loops).toEqual([]);
  });
});
