import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What V8 writes for `--cpu-prof` (the fields read here). */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  /** `function (file:line)`, or V8's own bucket: (program), (garbage collector), (idle). */
  frame: string;
  /** Share of the non-idle samples, in percent. */
  self_pct: number;
}

export interface ProfileSummary {
  file: string;
  /** Non-idle samples, and the profile's duration. */
  samples: number;
  duration_s: number;
  /** The hottest frames by self time. */
  top: ProfileRow[];
  /** Self time by source file (node_modules collapsed to the package; native code as itself). */
  by_file: ProfileRow[];
}

/** Self time of a V8 `.cpuprofile`, by frame and by file, idle time left out. */
export function summariseProfile(path: string, root: string, topN = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byFrame = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (hits === 0 || functionName === '(idle)') continue;
    total += hits;
    const file = fileOf(url, root);
    const frame = url === '' ? functionName || '(anonymous native)' : `${functionName || '(anonymous)'} (${file}:${lineNumber + 1})`;
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + hits);
    const bucket = url === '' ? functionName || '(native)' : file;
    byFile.set(bucket, (byFile.get(bucket) ?? 0) + hits);
  }
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([frame, hits]) => ({ frame, self_pct: Math.round((hits / Math.max(1, total)) * 1000) / 10 }));
  return { file: path, samples: total, duration_s: Math.round((profile.endTime - profile.startTime) / 1e5) / 10, top: rows(byFrame), by_file: rows(byFile) };
}

/** Every `.cpuprofile` in `dir`, summarised. */
export function summariseProfiles(dir: string, root: string, topN = 20): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((f) => summariseProfile(join(dir, f), root, topN));
}

function fileOf(url: string, root: string): string {
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return path.startsWith('/') ? relative(root, path) : path;
}
