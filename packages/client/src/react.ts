/**
 * @switchyard/client/react — hooks over a `SwitchyardClient`. This is the only module that
 * imports React, and only when this entry is imported: `react` is an optional peer
 * dependency, so applications without React never load it.
 *
 * Create the client once (outside components, or in a ref/context) and pass it in.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { ChannelSnapshot, ConnectionState, SwitchyardClient } from './client.js';
import type { SwitchyardError } from './errors.js';
import { followJob, initialJobState, type JobState } from './jobs.js';
import { acquireChannel } from './lease.js';
import type { ChannelEvent, StreamGap } from './stream.js';

/** Events a `useChannel` keeps by default. */
export const DEFAULT_CHANNEL_EVENT_LIMIT = 100;

/** The client's connection state, re-rendering on every change. */
export function useConnectionState(client: SwitchyardClient): ConnectionState {
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
  /** The channel's events since the hook subscribed (at most `limit`), oldest first, each once and in order. */
  events: ChannelEvent[];
  /** The newest event. */
  last: ChannelEvent | undefined;
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
export function useChannel(client: SwitchyardClient, channel: string | null | undefined, options: UseChannelOptions = {}): ChannelView {
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
    lease.ready.then(
      () => live && setView((v) => ({ ...v, status: 'subscribed', error: undefined })),
      (err: unknown) => live && setView((v) => ({ ...v, status: 'error', error: err as SwitchyardError })),
    );
    return () => {
      live = false;
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
export function useJob(client: SwitchyardClient, jobId: string | null | undefined): JobState {
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
