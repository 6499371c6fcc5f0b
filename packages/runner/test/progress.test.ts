import { describe, expect, it } from 'vitest';
import { ProgressReporter } from '../src/index.js';

type P = { progress?: number; stage?: string; message?: string };

describe('ProgressReporter', () => {
  it('sends at most one event per interval (the latest wins), stage changes at once, all in order', async () => {
    const sent: P[] = [];
    const r = new ProgressReporter(60_000, async (p) => {
      await new Promise((res) => setTimeout(res, 1)); // sleep-ok: a slow sender, which is what is tested
      sent.push(p);
    });
    r.update({ progress: 0.1, stage: 'a' });
    r.update({ progress: 0.2 });
    r.update({ progress: 0.3 });
    r.update({ progress: 0.4, stage: 'b' });
    r.update({ progress: 0.5 });
    await r.close();
    expect(sent).toEqual([
      { progress: 0.1, stage: 'a' },
      { progress: 0.4, stage: 'b' },
      { progress: 0.5, stage: 'b' },
    ]);
  });

  it('sends every update with a zero interval, and nothing after close', async () => {
    const sent: P[] = [];
    const r = new ProgressReporter(0, async (p) => void sent.push(p));
    for (let i = 1; i <= 5; i++) r.update({ progress: i / 5 });
    await r.close();
    r.update({ progress: 1 });
    expect(sent.map((p) => p.progress)).toEqual([0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('keeps going when sending fails', async () => {
    let calls = 0;
    const r = new ProgressReporter(0, async () => {
      calls++;
      throw new Error('broker down');
    });
    r.update({ progress: 0.1 });
    r.update({ progress: 0.2 });
    await r.close();
    expect(calls).toBe(2);
  });
});
