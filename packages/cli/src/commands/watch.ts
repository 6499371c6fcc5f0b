import { SwitchyardClient, followJob, isValidChannel, type ChannelEvent, type JobState, type SwitchyardError } from '@switchyard/client';
import { UsageError, parse } from '../args.js';
import { jobLine } from '../progress.js';
import { CommandFailed, REMOTE_OPTIONS, endpoints, tokenSource } from '../remote.js';
import { watchChannelSse, type SseWatchOptions } from '../sse-watch.js';

export const summary = 'follow a job (progress bar; exit 0 completed, 1 failed, 3 cancelled, 4 cannot watch) or channel:<name> (JSON lines)';

/** Exit codes of `watch`: the job's outcome, or why it could not be followed. */
export const WatchExit = {
  Completed: 0,
  Failed: 1,
  /** 2 is every command's usage error. */
  Cancelled: 3,
  /** Refused token or subscription, connection given up, or --timeout reached. */
  CannotWatch: 4,
  Interrupted: 130,
} as const;

const HELP = `usage: switchyard watch <job-id | job:<id> | channel:<name>> [options]

  job-123, job:job-123   follow a job: a live progress bar (stderr) with stage and retries,
                         then its final state as JSON (stdout). Exit code: 0 completed,
                         1 failed, 3 cancelled, 4 could not watch, 130 interrupted.
  channel:<name>         print the channel's events as JSON lines (stdout) until interrupted,
                         --count events have arrived, or --timeout.

options:
  --url URL[,URL...]     node(s): http(s):// or ws(s):// (default SWITCHYARD_URL or ${'http://127.0.0.1:8765'})
  --token JWT            token (or SWITCHYARD_TOKEN); or JWT_SECRET with --user ID to mint one
  --since N              channel: replay retained events after seq N first (0: all)
  --count N              channel: exit after N events
  --timeout S            give up after S seconds (exit 4; a channel watch without --count exits 0)
  --quiet                job: no progress bar, only the final JSON
  --sse                  channel: follow over Server-Sent Events (GET /sse) instead of a
                         WebSocket; a dropped stream resumes from its Last-Event-ID (on the
                         next --url node when it cannot reach the last one)
`;

export async function watch(argv: string[]): Promise<void> {
  const { values, positionals, common } = parse(argv, {
    ...REMOTE_OPTIONS,
    since: { type: 'string' },
    count: { type: 'string' },
    timeout: { type: 'string' },
    quiet: { type: 'boolean' },
    sse: { type: 'boolean' },
  });
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) throw new UsageError(`watch takes one target: a job id, job:<id> or channel:<name>\n\n${HELP}`);
  const since = optionalInt(values.since, '--since', 0);
  const count = optionalInt(values.count, '--count', 1);
  const timeoutS = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new UsageError('--timeout must be a positive number of seconds');

  const job = target.startsWith('channel:') ? undefined : target.startsWith('job:') ? target.slice(4) : target;
  const channel = job === undefined ? target.slice('channel:'.length) : `job:${job}`;
  if (!isValidChannel(channel) || (job !== undefined && job === '')) throw new UsageError(`"${target}" does not name a valid job or channel`);

  const { ws } = endpoints(values.url, common.env);
  if (values.sse === true) {
    if (job !== undefined) throw new UsageError('--sse follows channel:<name> targets');
    if (since !== undefined) throw new UsageError('--since is not available with --sse (a stream resumes from its own Last-Event-ID)');
    // Every node given, as HTTP: a stream that cannot be (re)opened on one tries the next.
    const nodes = ws.map((u) => u.replace(/^ws/, 'http').replace(/\/ws$/, ''));
    return watchSse({ nodes, channel, token: tokenSource(values, common, [channel]), count, timeoutS });
  }
  const client = new SwitchyardClient({ url: ws.length === 1 ? ws[0]! : ws, token: tokenSource(values, common, [channel]) });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const outcome = job !== undefined ? watchJob(client, job, values.quiet === true, stop.signal, timeoutS) : watchChannel(client, channel, { since, count, timeoutS, signal: stop.signal });
    process.exitCode = await outcome;
  } catch (err) {
    if (err instanceof CommandFailed) {
      process.stderr.write(`switchyard watch: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      throw err;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

async function watchSse(o: Omit<SseWatchOptions, 'signal'>): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.exitCode = await watchChannelSse({ ...o, signal: stop.signal });
  } catch (err) {
    if (!(err instanceof CommandFailed)) throw err;
    process.stderr.write(`switchyard watch: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function optionalInt(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer of at least ${min}`);
  return n;
}

/** Resolves when the signal fires, the timeout passes or the client gives up; whichever comes first. */
function interruptions(client: SwitchyardClient, signal: AbortSignal, timeoutS: number | undefined): { done: Promise<'interrupted' | 'timeout' | SwitchyardError>; clear(): void } {
  let clear = () => undefined as void;
  const done = new Promise<'interrupted' | 'timeout' | SwitchyardError>((resolve) => {
    const timer = timeoutS === undefined ? undefined : setTimeout(() => resolve('timeout'), timeoutS * 1000);
    const onAbort = () => resolve('interrupted');
    signal.addEventListener('abort', onAbort, { once: true });
    const off = client.on('state', (s) => {
      if (s.status === 'failed') resolve(s.error);
    });
    clear = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      off();
    };
  });
  return { done, clear: () => clear() };
}

async function watchJob(client: SwitchyardClient, jobId: string, quiet: boolean, signal: AbortSignal, timeoutS: number | undefined): Promise<number> {
  const tty = process.stderr.isTTY === true;
  let lastLine = '';
  const show = (state: JobState) => {
    if (quiet) return;
    const line = jobLine(state);
    if (line === lastLine) return;
    lastLine = line;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  };
  const offState = client.on('state', (s) => {
    if (quiet || s.status !== 'reconnecting') return;
    process.stderr.write(`${tty ? '\r\x1b[2K' : ''}reconnecting in ${s.delayMs} ms (closed ${s.closeCode})${tty ? '' : '\n'}`);
    lastLine = '';
  });
  const follower = followJob(client, jobId, { onUpdate: show });
  const stopper = interruptions(client, signal, timeoutS);
  try {
    const outcome = await Promise.race([follower.done, stopper.done]);
    if (tty && !quiet) process.stderr.write('\n');
    if (outcome === 'interrupted') return WatchExit.Interrupted;
    if (outcome === 'timeout') throw new CommandFailed(`job ${jobId} did not finish within ${timeoutS} s (last status: ${follower.state.status})`, WatchExit.CannotWatch);
    if (outcome instanceof Error) throw new CommandFailed(outcome.message, WatchExit.CannotWatch);
    const final = outcome;
    process.stdout.write(
      JSON.stringify({
        job_id: jobId,
        status: final.status,
        progress: final.progress,
        ...(final.stage !== undefined && { stage: final.stage }),
        ...(final.retry !== undefined && { retries: final.retry.attempt }),
        ...(final.status === 'completed' && { result: final.result ?? null }),
        ...(final.failure !== undefined && { error: final.failure.error, class: final.failure.class, attempts: final.failure.attempts }),
      }) + '\n',
    );
    return final.status === 'completed' ? WatchExit.Completed : final.status === 'failed' ? WatchExit.Failed : WatchExit.Cancelled;
  } catch (err) {
    if (err instanceof CommandFailed) throw err;
    // The subscription was refused (forbidden, bad channel) or the client closed.
    throw new CommandFailed(`cannot follow job ${jobId}: ${(err as Error).message}`, WatchExit.CannotWatch);
  } finally {
    stopper.clear();
    offState();
    follower.stop();
  }
}

async function watchChannel(
  client: SwitchyardClient,
  channel: string,
  options: { since: number | undefined; count: number | undefined; timeoutS: number | undefined; signal: AbortSignal },
): Promise<number> {
  let seen = 0;
  let reachedCount: () => void = () => undefined;
  const counted = new Promise<'count'>((resolve) => (reachedCount = () => resolve('count')));
  const offEvent = client.onChannel(channel, (e: ChannelEvent) => {
    if (options.count !== undefined && seen >= options.count) return;
    seen++;
    process.stdout.write(
      JSON.stringify({ channel: e.channel, seq: e.seq, event: e.event, data: e.data, timestamp: e.timestamp, ...(e.degraded && { degraded: true }) }) + '\n',
    );
    if (options.count !== undefined && seen >= options.count) reachedCount();
  });
  const offGap = client.on('gap', (g) => {
    if (g.channel !== channel) return;
    process.stderr.write(
      g.kind === 'reset'
        ? `switchyard watch: ${channel}: history was reset (seq starts over; now at ${g.seq})\n`
        : `switchyard watch: ${channel}: events after seq ${g.lastSeq ?? 0} were no longer retained (now at ${g.seq})\n`,
    );
  });
  const stopper = interruptions(client, options.signal, options.timeoutS);
  const subscribed = client.subscribe(channel, options.since === undefined ? {} : { since: options.since }).then(
    () => 'subscribed' as const,
    (err: unknown) => err as SwitchyardError,
  );
  try {
    const first = await Promise.race([subscribed, counted, stopper.done]);
    if (first instanceof Error && first.code !== 'timeout') throw new CommandFailed(`cannot watch ${channel}: ${first.message}`, WatchExit.CannotWatch);
    const outcome = first === 'subscribed' || first instanceof Error ? await Promise.race([counted, stopper.done]) : first;
    if (outcome === 'count') return 0;
    if (outcome === 'interrupted') return WatchExit.Interrupted;
    if (outcome === 'timeout') {
      if (options.count === undefined) return 0;
      throw new CommandFailed(`${seen} of ${options.count} events on ${channel} within ${options.timeoutS} s`, WatchExit.CannotWatch);
    }
    throw new CommandFailed(`cannot watch ${channel}: ${outcome.message}`, WatchExit.CannotWatch);
  } finally {
    stopper.clear();
    offEvent();
    offGap();
  }
}
