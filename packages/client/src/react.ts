/**
 * @switchyard/client/react — hooks over a `SwitchyardClient`. This is the only module that
 * imports React, and only when this entry is imported: `react` is an optional peer
 * dependency, so applications without React never load it.
 *
 * Wrap the app in `<SwitchyardProvider url=... token=...>` and call the hooks without a
 * client (`useChannel('room:1')`, `useJob(id)`), or pass a client you made yourself first.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import {
  acquireChannel,
  ClientClosedError,
  followJob,
  initialJobState,
  type ChannelEvent,
  type ChannelSnapshot,
  type ConnectionState,
  type JobState,
  type StreamGap,
  type SwitchyardClient,
  type SwitchyardError,
} from './index.js';
import { useOptionalSwitchyard } from './react-provider.js';

export { SwitchyardProvider, useSwitchyard } from './react-provider.js';
export type { SwitchyardProviderProps } from './react-provider.js';

function isClient(value: unknown): value is SwitchyardClient {
  // Duck-typed: the CommonJS and ESM builds each have their own class.
  return typeof value === 'object' && value !== null && typeof (value as SwitchyardClient).subscribe === 'function' && typeof (value as SwitchyardClient).on === 'function';
}

function required(client: SwitchyardClient | null, hook: string): SwitchyardClient {
  if (client === null) throw new Error(`${hook}: pass a SwitchyardClient, or render it inside <SwitchyardProvider>`);
  return client;
}

/** Events a `useChannel` keeps by default. */
export const DEFAULT_CHANNEL_EVENT_LIMIT = 100;

/** The client's connection state (the provider's without an argument), re-rendering on every change. */
export function useConnectionState(given?: SwitchyardClient): ConnectionState {
  const fromContext = useOptionalSwitchyard();
  const client = required(given ?? fromContext, 'useConnectionState');
  return useSyncExternalStore(
    (onChange) => client.on('state', onChange),
    () => client.state,
    () => client.state,
  );
}

export interface UseChannelOptions {
  /** Replay retained events after this seq when the channel is first subscribed (0: all). */
  since?: number;
  /**
   * Events kept (the newest).
   * @default 100
   */
  limit?: number;
}

export interface ChannelView {
  /** The channel's events since the hook subscribed (at most `limit`), oldest first, each once and in order (key them by `id`). */
  events: ChannelEvent[];
  /** The newest event. */
  last: ChannelEvent | undefined;
  /**
   * `subscribing` also while the connection is down and coming back; `error` when the server
   * refused the channel, or the client failed (a refused token, ...) or was closed.
   */
  status: 'idle' | 'subscribing' | 'subscribed' | 'error';
  error: SwitchyardError | undefined;
  /** The last gap or reset reported for the channel: reload its state when it changes. */
  gap: StreamGap | undefined;
  /** The channel's last snapshot (job channels): its state as of `snapshot.seq`, before `events`. */
  snapshot: ChannelSnapshot | undefined;
}

const IDLE: ChannelView = { events: [], last: undefined, status: 'idle', error: undefined, gap: undefined, snapshot: undefined };

/**
 * Subscribes to `channel` while the component is mounted (pass null to hold none). Several
 * components may use the same channel; it is unsubscribed when the last one unmounts.
 */
export function useChannel(channel: string | null | undefined, options?: UseChannelOptions): ChannelView;
export function useChannel(client: SwitchyardClient, channel: string | null | undefined, options?: UseChannelOptions): ChannelView;
export function useChannel(...args: [SwitchyardClient, string | null | undefined, UseChannelOptions?] | [string | null | undefined, UseChannelOptions?]): ChannelView {
  const fromContext = useOptionalSwitchyard();
  const [given, channel, options = {}] = isClient(args[0]) ? (args as [SwitchyardClient, string | null | undefined, UseChannelOptions?]) : [null, ...(args as [string | null | undefined, UseChannelOptions?])];
  const client = required(given ?? fromContext, 'useChannel');
  const { since, limit = DEFAULT_CHANNEL_EVENT_LIMIT } = options;
  const [view, setView] = useState<ChannelView>(IDLE);
  useEffect(() => {
    if (channel === null || channel === undefined) {
      setView(IDLE);
      return undefined;
    }
    setView({ ...IDLE, status: 'subscribing' });
    let live = true;
    const offEvent = client.onChannel(channel, (e) => {
      setView((v) => {
        const events = v.events.length >= limit ? [...v.events.slice(v.events.length - limit + 1), e] : [...v.events, e];
        return { ...v, events, last: e };
      });
    });
    const offGap = client.on('gap', (g) => {
      if (g.channel === channel) setView((v) => ({ ...v, gap: g }));
    });
    const offSnapshot = client.onSnapshot(channel, (snapshot) => setView((v) => ({ ...v, snapshot })));
    const lease = acquireChannel(client, channel, since === undefined ? {} : { since });
    /** The server refused the channel: it is not asked for again. */
    let refused = false;
    const confirmed = (ready: Promise<unknown>) =>
      ready.then(
        () => live && setView((v) => ({ ...v, status: 'subscribed', error: undefined })),
        (err: unknown) => {
          if (!live) return;
          const e = err as SwitchyardError;
          if (e.code === 'server_error') refused = true;
          // A timeout while offline is the connection's state, shown as `subscribing`.
          if (e.code !== 'timeout' || client.state.status === 'connected') setView((v) => ({ ...v, status: 'error', error: e }));
        },
      );
    confirmed(lease.ready);
    const onState = (s: ConnectionState) => {
      if (!live) return;
      if (s.status === 'failed') setView((v) => ({ ...v, status: 'error', error: s.error }));
      else if (s.status === 'closed') setView((v) => ({ ...v, status: 'error', error: new ClientClosedError(`channel ${channel}`) }));
      else if (refused) return;
      else if (s.status === 'connected') confirmed(client.subscribe(channel));
      else setView((v) => (v.status === 'subscribing' ? v : { ...v, status: 'subscribing', error: undefined }));
    };
    const offState = client.on('state', onState);
    if (client.state.status === 'failed' || client.state.status === 'closed') onState(client.state);
    return () => {
      live = false;
      offState();
      offEvent();
      offGap();
      offSnapshot();
      lease.release();
    };
  }, [client, channel, since, limit]);
  return view;
}

/**
 * Follows a job (`job:<id>` events folded into a `JobState`: status, progress, stage,
 * retries, stalls, result or failure), starting from the server's snapshot of its status.
 * Pass null to follow none.
 */
export function useJob(jobId: string | null | undefined): JobState;
export function useJob(client: SwitchyardClient, jobId: string | null | undefined): JobState;
export function useJob(...args: [SwitchyardClient, string | null | undefined] | [string | null | undefined]): JobState {
  const fromContext = useOptionalSwitchyard();
  const [given, jobId] = isClient(args[0]) ? (args as [SwitchyardClient, string | null | undefined]) : [null, args[0] as string | null | undefined];
  const client = required(given ?? fromContext, 'useJob');
  const [state, setState] = useState<JobState>(() => initialJobState(jobId ?? ''));
  useEffect(() => {
    if (jobId === null || jobId === undefined || jobId === '') {
      setState(initialJobState(''));
      return undefined;
    }
    const follower = followJob(client, jobId, { onUpdate: setState });
    setState(follower.state);
    return () => follower.stop();
  }, [client, jobId]);
  return state;
}
