import { describe, expect, it } from 'vitest';
import { slope, summarise, type Sample } from '../../scripts/soak/driver.js';

const MB = 1024 * 1024;

/** Synthetic samples: a GC sawtooth around `live(t)` MB of live heap, `fds(t)` open fds. */
function samples(durationMs: number, live: (t: number) => number, fds: (t: number) => number = () => 40): Sample[] {
  const out: Sample[] = [];
  for (let t = 0; t <= durationMs; t += 2000) {
    const saw = ((t / 2000) % 5) * 2;
    out.push({
      t,
      nodes: { edge0: { rssBytes: (80 + live(t) + saw) * MB, heapUsedBytes: (live(t) + saw) * MB, openFds: fds(t), eventLoopP99S: 0.02 } },
      redis: { keys: 10, usedMemoryBytes: MB },
      connected: 30,
      driverLoopP99Ms: 5,
    });
  }
  return out;
}

describe('the soak leak criterion', () => {
  it('passes a steady sawtooth, whatever its peaks', () => {
    const { nodes, failures } = summarise(samples(120_000, () => 15), 120_000);
    expect(failures).toEqual([]);
    expect(nodes['edge0']!.heapTroughQ2Mb).toBe(15);
    expect(Math.abs(nodes['edge0']!.heapSlopeMbPerH)).toBeLessThan(50);
  });

  it('fails heap that the collector cannot give back (troughs rising)', () => {
    // 20 MB per minute (the 2-minute soak's resolution; the 20-minute one reports the slope):
    // 15 MB at the start, 55 MB at the end.
    const { failures } = summarise(samples(120_000, (t) => 15 + t / 3000), 120_000);
    expect(failures).toEqual([expect.stringMatching(/edge0: heap troughs grew/)]);
  });

  it('passes troughs that wander without a trend, as a healthy node does', () => {
    const wander = [16, 19, 15, 14, 15, 16, 17, 21, 17, 16, 21];
    const { failures } = summarise(samples(1_200_000, (t) => wander[Math.floor(t / 120_000)] ?? 16), 1_200_000);
    expect(failures).toEqual([]);
  });

  it('fails open fds that keep growing', () => {
    const { failures } = summarise(samples(120_000, () => 15, (t) => 40 + Math.floor(t / 2000)), 120_000);
    expect(failures).toEqual([expect.stringMatching(/edge0: open fds grew/)]);
  });

  it('fits a least-squares slope', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2);
    expect(slope([1], [5])).toBe(0);
  });
});
