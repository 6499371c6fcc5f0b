import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summariseProfile, summariseProfiles } from '../src/profile.js';

const dir = mkdtempSync(join(tmpdir(), 'sy-profile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (id: number, functionName: string, url: string, lineNumber: number, hitCount: number) => ({ id, callFrame: { functionName, url, lineNumber }, hitCount });

describe('CPU profile summary', () => {
  it('ranks self time by frame and by file, idle left out, dependencies collapsed to their package', () => {
    const path = join(dir, 'a.cpuprofile');
    writeFileSync(
      path,
      JSON.stringify({
        startTime: 0,
        endTime: 2_000_000,
        nodes: [
          frame(1, '(root)', '', -1, 0),
          frame(2, '(idle)', '', -1, 900),
          frame(3, 'deliver', 'file:///repo/packages/edge/src/hub.ts', 41, 30),
          frame(4, 'publish', 'file:///repo/packages/edge/src/hub.ts', 9, 20),
          frame(5, 'parse', 'file:///repo/node_modules/.pnpm/pino@9/node_modules/pino/lib/x.js', 0, 10),
          frame(6, '(garbage collector)', '', -1, 40),
          frame(7, 'deliver', 'file:///repo/packages/edge/src/hub.ts', 41, 0),
        ],
      }),
    );
    const s = summariseProfile(path, '/repo', 3);
    expect(s.samples).toBe(100);
    expect(s.duration_s).toBe(2);
    expect(s.top).toEqual([
      { frame: '(garbage collector)', self_pct: 40 },
      { frame: 'deliver (packages/edge/src/hub.ts:42)', self_pct: 30 },
      { frame: 'publish (packages/edge/src/hub.ts:10)', self_pct: 20 },
    ]);
    expect(s.by_file).toEqual([
      { frame: 'packages/edge/src/hub.ts', self_pct: 50 },
      { frame: '(garbage collector)', self_pct: 40 },
      { frame: 'pino', self_pct: 10 },
    ]);
    expect(summariseProfiles(dir, '/repo').map((p) => p.file)).toEqual([path]);
  });
});
