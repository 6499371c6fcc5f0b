/**
 * @switchyard/bench: `switchyard bench` — Switchyard side by side with a bare uWebSockets.js
 * app (the ceiling) and Socket.IO with its Redis adapter, on this machine, in one run.
 */
export { runBench, QUICK_PLAN, FULL_PLAN } from './bench.js';
export type { BenchOptions } from './bench.js';
export type { BenchPlan, BenchResult, ScenarioResult, SystemFigures, FigureKey, RatioName, Target } from './result.js';
export { renderFanoutSvg } from './chart.js';
export { renderMarkdown } from './report.js';
export { buildLoadgen, LOADGEN_SOURCE } from './native.js';
export { SYSTEMS } from './systems.js';
export { summariseProfile, summariseProfiles } from './profile.js';
export type { ProfileRow, ProfileSummary } from './profile.js';
export type { SystemName } from './systems.js';
