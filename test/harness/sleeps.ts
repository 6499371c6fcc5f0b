import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Finds fixed sleeps in test code: a wait of a set time where a test should wait on the
 * condition it asserts. A sleep that is meant (a "nothing may happen in this window" check, a
 * poll interval, pacing, an outage a test stages) carries a reason on its line or the line
 * before, in the form `sleep-ok: <why>`.
 */
export const SLEEP_OK = /sleep-ok:\s*\S/;

/** `setTimeout(resolve, n)`: a timer whose callback only resolves a promise is a wait. */
const RESOLVER_TIMER = /\bsetTimeout\(\s*(?:r|res|resolve|done|ok|wake)\s*,/;
/** `sleep(n)` / `delay(n)` called as a function (not `x.delay(...)`, not a definition). */
const SLEEP_CALL = /(?<![.\w$])(?:sleep|delay|pause|wait)\(\s*[^)\s]/;
/** The definition of a sleep helper is not itself a wait; its calls are. */
const SLEEP_DEFINITION = /\b(?:const|let|function)\s+(?:sleep|delay|pause|wait)\b|^\s*export\s+function\s+(?:sleep|delay|pause|wait)\b/;

export interface FixedSleep {
  line: number;
  text: string;
}

/** The unmarked fixed sleeps in one file's source, with 1-based line numbers. */
export function findFixedSleeps(source: string): FixedSleep[] {
  const lines = source.split('\n');
  const out: FixedSleep[] = [];
  lines.forEach((text, i) => {
    // A comment that mentions a sleep is not one.
    if (/^\s*(?:\/\/|\/\*|\*)/.test(text)) return;
    const isSleep = RESOLVER_TIMER.test(text) || (SLEEP_CALL.test(text) && !SLEEP_DEFINITION.test(text));
    // The definition of a helper (its line, or the body line right after) is not a wait.
    if (!isSleep || SLEEP_DEFINITION.test(text) || SLEEP_DEFINITION.test(lines[i - 1] ?? '')) return;
    if (SLEEP_OK.test(text) || SLEEP_OK.test(lines[i - 1] ?? '')) return;
    out.push({ line: i + 1, text: text.trim() });
  });
  return out;
}

/** Every TypeScript/JavaScript file under `dir`, skipping node_modules. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(?:ts|mts|cts|js|mjs|cjs)$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** `path:line: text` for each unmarked fixed sleep in `files`, paths relative to `root`. */
export function reportFixedSleeps(root: string, files: string[]): string[] {
  return files.flatMap((file) => findFixedSleeps(readFileSync(file, 'utf8')).map((s) => `${relative(root, file)}:${s.line}: ${s.text}`));
}
