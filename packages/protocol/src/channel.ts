/** PROTOCOL.md §3: 1–200 characters of `A-Z a-z 0-9 : _ - . @ /`. */
const CHANNEL_CHARS = /^[A-Za-z0-9:_\-.@/]{1,200}$/;

export const MAX_CHANNEL_LENGTH = 200;

export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_CHARS.test(name);
}

/**
 * Matches a channel against a pattern in which `*` stands for any run of characters
 * (including none and including `:`). Iterative with single backtrack point, so a
 * hostile pattern like `*a*a*a*a*b` stays linear-ish instead of exponential.
 */
export function matchGlob(pattern: string, subject: string): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  const pl = pattern.length;
  const sl = subject.length;
  while (s < sl) {
    const pc = p < pl ? pattern.charCodeAt(p) : -1;
    if (pc === 42 /* * */) {
      starP = p++;
      starS = s;
    } else if (pc === subject.charCodeAt(s)) {
      p++;
      s++;
    } else if (starP !== -1) {
      p = starP + 1;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (p < pl && pattern.charCodeAt(p) === 42) p++;
  return p === pl;
}

export function matchesAny(patterns: readonly string[] | undefined, subject: string): boolean {
  if (patterns === undefined) return false;
  for (const pattern of patterns) {
    if (matchGlob(pattern, subject)) return true;
  }
  return false;
}

/** The channel of a job's events, `job:<id>`, unchecked (`jobChannel` checks it). */
export function jobChannelName(jobId: string): string {
  return `job:${jobId}`;
}

/** `job:<id>` channel for a job id, or undefined when the id is empty or would not make a valid channel. */
export function jobChannel(jobId: string): string | undefined {
  if (jobId.length === 0) return undefined;
  const channel = jobChannelName(jobId);
  return isValidChannel(channel) ? channel : undefined;
}
