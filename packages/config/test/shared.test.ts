import { describe, expect, it } from 'vitest';
import { edgeSettings } from '../../edge/src/config.js';
import { runnerSettings } from '../../runner/src/config.js';
import { describedAs, sharedSettings, type Setting } from '../src/index.js';

/** Bad and good raw values each shared setting must treat alike in every process. */
const SAMPLES: unknown[] = ['', 'x', '-1', '0', '5', '1e3', 'debug', 'a:1, b:2', 'redis://h:1'];

function behaviour(s: Setting<unknown>): unknown[] {
  return [s.env, s.default, ...SAMPLES.map((raw) => {
    try {
      return s.parse(raw);
    } catch (err) {
      return `rejected: ${(err as Error).message}`;
    }
  })];
}

describe('settings shared by edge and runner', () => {
  for (const [key, shared] of Object.entries(sharedSettings)) {
    it(`${shared.env} has one name, default and range in both processes`, () => {
      const edge = (edgeSettings as Record<string, Setting<unknown>>)[key];
      const runner = (runnerSettings as Record<string, Setting<unknown>>)[key];
      expect(edge, `edge setting ${key}`).toBeDefined();
      expect(runner, `runner setting ${key}`).toBeDefined();
      expect(behaviour(edge!)).toEqual(behaviour(shared));
      expect(behaviour(runner!)).toEqual(behaviour(shared));
    });
  }

  it('describedAs rewords a setting without changing it', () => {
    const s = describedAs(sharedSettings.historySize, 'other words');
    expect(s.doc).toBe('other words');
    expect(behaviour(s)).toEqual(behaviour(sharedSettings.historySize));
    expect(sharedSettings.historySize.doc).not.toBe('other words');
  });
});
