import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../harness/edge.js';
import { findFixedSleeps, reportFixedSleeps, sourceFiles } from '../harness/sleeps.js';

/**
 * A test that waits a fixed time before an exact assertion fails on a busy machine and passes
 * on a fast one for the wrong reason. Every fixed sleep in the tests either goes (wait on the
 * condition) or says why it is meant, with `sleep-ok: <reason>` on its line or the line before.
 */
describe('no unmarked fixed sleeps in the tests', () => {
  const testDirs = [join(ROOT, 'test'), ...readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p, 'test')).filter((d) => existsSync(d))];
  // The detector's own samples below are not waits.
  const files = testDirs.flatMap(sourceFiles).filter((f) => !f.endsWith(join('test', 'meta', 'no-sleeps.test.ts')));

  it('scans the suite: the integration tests, the harness and every package with tests', () => {
    expect(files.length).toBeGreaterThan(50);
    for (const known of ['test/harness/ports.ts', 'test/cluster/cluster.test.ts', 'packages/jobs/test/store-contract.ts', 'packages/runner/test/runner.test.ts']) {
      expect(files).toContain(join(ROOT, known));
    }
  });

  it('finds none unmarked', () => {
    expect(reportFixedSleeps(ROOT, files)).toEqual([]);
  });

  describe('the detector', () => {
    it('flags a resolver timer and a sleep call', () => {
      const source = [
        'await new Promise((r) => setTimeout(r, 400));',
        'await new Promise((resolve) => setTimeout(resolve, 50));',
        'await sleep(300);',
        'await delay(10);',
        "await new Promise((res) => setTimeout(res, 1)); // the node flushes",
      ].join('\n');
      expect(findFixedSleeps(source).map((s) => s.line)).toEqual([1, 2, 3, 4, 5]);
    });

    it('accepts a reason on the line or the line before', () => {
      const source = [
        'await sleep(300); // sleep-ok: nothing may arrive in this window',
        '// sleep-ok: poll interval of a bounded wait',
        'await new Promise((r) => setTimeout(r, 20));',
        'await sleep(300); // sleep-ok:',
      ].join('\n');
      // An empty reason is no reason.
      expect(findFixedSleeps(source).map((s) => s.line)).toEqual([4]);
    });

    it('leaves alone definitions, timeouts that reject, member calls and unrelated names', () => {
      const source = [
        'const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));',
        'export function sleep(ms: number): Promise<void> {',
        "const timer = setTimeout(() => reject(new Error('timed out')), ms);",
        'jwks.setDelay(3000);',
        'const d = backoff.delay(3);',
        'reconnect: { delay: () => 60_000 },',
        'await waitFor(() => ready, 5000);',
      ].join('\n');
      expect(findFixedSleeps(source)).toEqual([]);
    });
  });
});
