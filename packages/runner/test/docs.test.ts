import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RUNNER_DOC, RUNNER_END, RUNNER_START, runnerConfigTable, runnerTableIn } from '../../../scripts/runner-config-table.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('runner configuration docs', () => {
  it(`${RUNNER_DOC} carries the table generated from the code (run scripts/runner-config-table.ts --write after changing a setting)`, () => {
    const text = readFileSync(`${ROOT}${RUNNER_DOC}`, 'utf8');
    expect(text).toContain(RUNNER_START);
    expect(text).toContain(RUNNER_END);
    expect(runnerTableIn(text)).toBe(runnerConfigTable());
  });
});
