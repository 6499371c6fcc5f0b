import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOAK_DEFAULTS, renderSoak, runSoak, type SoakReport } from '../../scripts/soak/driver.js';
import { startSoakSystem, type SoakSystem } from '../../scripts/soak/system.js';
import { recordFigures } from './figures.js';

/**
 * The soak, two minutes long (`pnpm soak --minutes 20` is the long one): steady fan-out,
 * reconnect churn and jobs on 3 edges + Redis + Kafka + a runner. Fails on a lost or repeated
 * event, a job that finished twice or never, or a leak: heap troughs (what the collector
 * could not free) or open fds that grow under a workload that does not.
 */
describe('soak (2 minutes)', () => {
  let system: SoakSystem;
  let report: SoakReport;

  beforeAll(async () => {
    system = await startSoakSystem();
  }, 240_000);

  afterAll(async () => {
    await system?.stop();
  });

  it('holds memory, fds and every event steady under churn, resumes and jobs', async () => {
    report = await runSoak(system.target, {
      ...SOAK_DEFAULTS,
      durationMs: 120_000,
      sampleEveryMs: 2000,
      subscribersPerEdge: 10,
      channels: 4,
      publishEveryMs: 100,
      churnPerS: 2,
      jobEveryMs: 2000,
    });
    recordFigures('soak-2min', { markdown: renderSoak(report), ...report, samples: undefined });
    expect(report.failures).toEqual([]);
    // It really ran: events flowed, connections churned both ways, jobs ran.
    expect(report.events.acked).toBeGreaterThan(1000);
    expect(report.events.delivered).toBeGreaterThan(report.events.acked);
    expect(report.churn.sessionResumes).toBeGreaterThan(20);
    expect(report.churn.sinceResumes).toBeGreaterThan(20);
    expect(report.jobs.completed).toBeGreaterThan(10);
    // Every node answered its /metrics throughout.
    for (const s of report.samples) for (const [name, p] of Object.entries(s.nodes)) expect(p, `${name} at ${s.t} ms`).not.toBeNull();
    for (const e of system.edges) expect(e.proc.exitCode).toBeNull();
  }, 300_000);
});
