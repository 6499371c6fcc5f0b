import { CommandFailed, type TokenSource } from './remote.js';

/** Exit codes shared with `watch` (commands/watch.ts WatchExit). */
const CANNOT_WATCH = 4;
const INTERRUPTED = 130;
/** Reconnect delays after a dropped stream, like an EventSource's `retry`, capped. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export interface SseWatchOptions {
  /** Base HTTP URLs of the nodes (or a proxy); a stream that drops reopens on the next one. */
  nodes: readonly string[];
  channel: string;
  token: TokenSource;
  count: number | undefined;
  timeoutS: number | undefined;
  signal: AbortSignal;
}

type Frame = Record<string, unknown>;

/**
 * `watch channel:<name> --sse`: follows the channel over `GET /sse`, printing its events as
 * the WebSocket watch does. A dropped stream is reopened with the last `id:` as
 * `Last-Event-ID` (what a browser's EventSource does), so nothing is missed or repeated.
 */
export async function watchChannelSse(o: SseWatchOptions): Promise<number> {
  const stop = new AbortController();
  let why: 'interrupted' | 'timeout' | 'count' | undefined;
  const end = (reason: typeof why) => {
    why ??= reason;
    stop.abort();
  };
  const onSignal = () => end('interrupted');
  o.signal.addEventListener('abort', onSignal, { once: true });
  const timer = o.timeoutS === undefined ? undefined : setTimeout(() => end('timeout'), o.timeoutS * 1000);
  let seen = 0;
  let lastId: string | undefined;
  let retryMs = FIRST_RETRY_MS;
  let node = 0;
  const onFrame = (frame: Frame): void => {
    if (frame['type'] === 'event') {
      if (o.count !== undefined && seen >= o.count) return;
      seen++;
      const { channel, seq, event, data, timestamp, degraded } = frame;
      process.stdout.write(JSON.stringify({ channel, seq, event, data, timestamp, ...(degraded === true && { degraded: true }) }) + '\n');
      if (o.count !== undefined && seen >= o.count) end('count');
    } else if (frame['type'] === 'subscription_result') {
      if (frame['success'] === false) throw new CommandFailed(`cannot watch ${o.channel}: ${String(frame['error'])}`, CANNOT_WATCH);
      retryMs = FIRST_RETRY_MS;
      if (frame['recovered'] === false) process.stderr.write(`switchyard watch: ${o.channel}: some events were no longer retained (now at ${String(frame['seq'])})\n`);
    } else if (frame['type'] === 'auth_expired' && typeof o.token === 'string') {
      throw new CommandFailed('the token expired; pass a fresh --token, or --user with JWT_SECRET to mint them', CANNOT_WATCH);
    }
  };
  try {
    while (!stop.signal.aborted) {
      try {
        await follow(o.nodes[node % o.nodes.length]!, o, lastId, stop.signal, onFrame, (id) => (lastId = id));
      } catch (err) {
        if (err instanceof CommandFailed) throw err;
        if (stop.signal.aborted) break;
        process.stderr.write(`switchyard watch: stream lost (${(err as Error).message}); reconnecting in ${retryMs} ms\n`);
        node++;
      }
      if (stop.signal.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
    }
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onSignal);
  }
  if (why === 'interrupted') return INTERRUPTED;
  if (why === 'timeout' && o.count !== undefined) throw new CommandFailed(`${seen} of ${o.count} events on ${o.channel} within ${o.timeoutS} s`, CANNOT_WATCH);
  return 0;
}

/** One stream, read until it ends; refusals that retrying cannot fix throw CommandFailed. */
async function follow(base: string, o: SseWatchOptions, lastId: string | undefined, signal: AbortSignal, onFrame: (f: Frame) => void, onId: (id: string) => void): Promise<void> {
  const token = typeof o.token === 'string' ? o.token : await o.token();
  const res = await fetch(`${base}/sse?channel=${encodeURIComponent(o.channel)}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(lastId !== undefined && { 'last-event-id': lastId }) },
    signal,
  });
  if (res.status !== 200) {
    const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    const detail = `HTTP ${res.status} ${body.error ?? ''}${body.message ? ` (${body.message})` : ''}`.trim();
    if ([400, 401, 403].includes(res.status)) throw new CommandFailed(`cannot watch ${o.channel}: ${detail}`, CANNOT_WATCH);
    throw new Error(detail);
  }
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = rest.indexOf('\n\n')) >= 0) {
      const block = rest.slice(0, i);
      rest = rest.slice(i + 2);
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) onId(line.slice(3).trim());
        else if (line.startsWith('data:')) data += line.slice(5).trimStart();
      }
      if (data !== '') onFrame(JSON.parse(data) as Frame);
      if (signal.aborted) return;
    }
  }
}
