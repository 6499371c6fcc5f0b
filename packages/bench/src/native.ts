import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The C load client's source, and where it is compiled (git-ignored). */
export const LOADGEN_SOURCE = fileURLToPath(new URL('../native/loadgen.c', import.meta.url));
export const BUILD_DIR = fileURLToPath(new URL('../.build/', import.meta.url));

/**
 * Compiles the load client with gcc unless a binary of this very source is already there
 * (named by the source's hash, so a bench running while the source changes keeps its own).
 * Returns the binary's path; throws with gcc's output when it cannot be built.
 */
export function buildLoadgen(): string {
  const hash = createHash('sha256').update(readFileSync(LOADGEN_SOURCE)).digest('hex').slice(0, 12);
  const binary = `${BUILD_DIR}loadgen-${hash}`;
  if (existsSync(binary)) return binary;
  mkdirSync(BUILD_DIR, { recursive: true });
  const tmp = `${binary}.${process.pid}`;
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', tmp, LOADGEN_SOURCE], { encoding: 'utf8', timeout: 120_000 });
  if (r.error !== undefined) throw new Error(`cannot run gcc to build the load client: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`gcc failed to build the load client:\n${r.stdout}${r.stderr}`);
  // Rename is atomic: two benches building at once both end with a whole binary.
  renameSync(tmp, binary);
  return binary;
}
