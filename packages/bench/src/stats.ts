import * as hdr from 'hdr-histogram-js';
import type { LoadReport } from './loadproc.js';

export function median(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function minOf(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? null : Math.min(...v);
}

export function maxOf(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? null : Math.max(...v);
}

export interface Percentiles {
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  count: number;
}

/**
 * Merges the load clients' bucketed latencies (microseconds) into one HdrHistogram
 * (3 significant digits) and reads the percentiles off it. Null when nothing was sampled.
 */
export function percentiles(reports: readonly Pick<LoadReport, 'hist'>[]): Percentiles | null {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  let count = 0;
  for (const r of reports) {
    for (const [us, n] of r.hist) {
      h.recordValueWithCount(Math.max(1, Math.min(us, 3_600_000_000)), n);
      count += n;
    }
  }
  if (count === 0) return null;
  const ms = (v: number) => Math.round(v) / 1000;
  return {
    p50_ms: ms(h.getValueAtPercentile(50)),
    p99_ms: ms(h.getValueAtPercentile(99)),
    p999_ms: ms(h.getValueAtPercentile(99.9)),
    max_ms: ms(h.maxValue),
    count,
  };
}

/** Rounds to 3 significant digits for the report (null stays null). */
export function sig(value: number | null | undefined, digits = 3): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  return Number(value.toPrecision(digits));
}
