import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeSettings } from '@switchyard/config';
import { describe, expect, it } from 'vitest';
import { DOCS, END, START, configTable, tableIn } from '../../../scripts/config-table.js';
import { edgeSettings } from '../src/config.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('configuration docs', () => {
  it('the script prints exactly describeSettings(edgeSettings)', () => {
    expect(configTable()).toBe(describeSettings(edgeSettings));
    // One row per setting, each naming its environment variable.
    const rows = configTable().split('\n').slice(2);
    expect(rows.map((r) => /^\| `([A-Z0-9_]+)` \|/.exec(r)?.[1])).toEqual(Object.values(edgeSettings).map((s) => s.env));
  });

  for (const doc of DOCS) {
    it(`${doc} carries the table generated from the code (run \`pnpm config-table --write\` after changing a setting)`, () => {
      const text = readFileSync(`${ROOT}${doc}`, 'utf8');
      expect(text).toContain(START);
      expect(text).toContain(END);
      expect(tableIn(text)).toBe(configTable());
    });
  }

  it('tableIn finds only what lies between the markers', () => {
    expect(tableIn('no markers')).toBeUndefined();
    expect(tableIn(`${END}\n${START}`)).toBeUndefined();
    expect(tableIn(`x\n${START}\n| a |\n${END}\ny`)).toBe('| a |');
  });
});
