import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startEdge, type EdgeProcess } from '../harness/index.js';
import { startKafka, type KafkaServer } from '../harness/kafka.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startRunner, type RunnerProcess } from '../jobs/helpers.js';

const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'switchyard.json');

interface Panel {
  type: string;
  title: string;
  targets?: { expr?: string; refId: string }[];
  panels?: Panel[];
}

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers,
 * range selectors, grouping clauses, Grafana variables, numbers and function calls are taken out.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined) continue; // a function call
    if (KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Every name a scrape exposes: each sample's name, and each histogram's and summary's series names. */
function exposed(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const line of scrape.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type !== null) {
      names.add(type[1]!);
      if (type[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(type[1]! + s);
      if (type[2] === 'summary') for (const s of ['_sum', '_count']) names.add(type[1]! + s);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample !== null) names.add(sample[1]!);
  }
  return names;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

describe('metricNames (PromQL)', () => {
  it('finds the metrics and nothing else', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(switchyard_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      'switchyard_delivery_latency_seconds_bucket',
    ]);
    expect(metricNames('sum by (type) (rate(switchyard_messages_total{direction="in",type=~"a|b"}[5m])) / on (instance) group_left sum(up)').sort()).toEqual(['switchyard_messages_total', 'up']);
    expect(metricNames('count(no_such_metric) > bool 0')).toEqual(['no_such_metric']);
  });
});

describe('the Grafana dashboard reads only metrics that edges and runners export', () => {
  let redis: RedisServer;
  let kafka: KafkaServer;
  const edges: EdgeProcess[] = [];
  let runner: RunnerProcess;
  let names: Set<string>;

  beforeAll(async () => {
    [kafka, redis] = await Promise.all([startKafka(), startRedis()]);
    const common = { REDIS_URL: redis.url, KAFKA_SERVERS: kafka.brokers, KAFKA_JOBS_TOPIC: 'grafana_jobs', PIPELINE_EXECUTABLE: undefined };
    edges.push(...(await Promise.all([startEdge({ ...common, WORKER_ID: 'g-a' }, { timeoutMs: 60_000 }), startEdge({ ...common, WORKER_ID: 'g-b' }, { timeoutMs: 60_000 })])));
    runner = await startRunner('g-runner', { REDIS_URL: redis.url, KAFKA_SERVERS: kafka.brokers, KAFKA_JOBS_TOPIC: 'grafana_jobs', KAFKA_GROUP_ID: 'g-grafana' }, 90_000);
    const scrapes = await Promise.all([...edges.map(async (e) => (await fetch(`${e.http}/metrics`)).text()), runner.metrics()]);
    names = new Set(scrapes.flatMap((s) => [...exposed(s)]));
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled([runner?.stop(), ...edges.map((e) => e.stop())]);
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  });

  it('is a dashboard with the panels operators need, each with a query', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
    expect(dashboard.uid).toBe('switchyard');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
    const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
    const titles = panels.map((p) => p.title.toLowerCase());
    for (const needed of ['connections per node', 'deliveries per second', 'delivery latency quantiles', 'slow lanes and 4010 closes', 'redis health', 'job states', 'consumer lag', 'event-loop delay', 'gc pauses']) {
      expect(titles, needed).toContain(needed);
    }
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr, `${p.title} ${t.refId}`).toMatch(/\S/);
    }
  });

  it('every metric name in every panel query (and variable) appears in a real /metrics scrape', () => {
    const raw = readFileSync(DASHBOARD, 'utf8');
    const dashboard = JSON.parse(raw) as { panels: Panel[]; templating: { list: { query?: unknown }[] } };
    const exprs = allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr! })));
    for (const v of dashboard.templating.list) {
      const q = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: string }).query : undefined;
      if (q !== undefined && q.startsWith('label_values(')) exprs.push({ where: 'variable', expr: q.slice('label_values('.length, q.indexOf(',')) });
    }
    expect(exprs.length).toBeGreaterThan(20);
    const missing: string[] = [];
    let checked = 0;
    for (const { where, expr } of exprs) {
      const used = metricNames(expr);
      expect(used.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of used) {
        checked++;
        if (!names.has(name)) missing.push(`${where}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(20);
    // The runtime metrics come from both kinds of process, the job metrics from the runner.
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_gc_duration_seconds_sum', 'switchyard_redis_up', 'switchyard_consumer_lag', 'switchyard_jobs_running']) expect(names.has(name), name).toBe(true);
  });
});
