/**
 * Shared subscriptions: several parts of an application (two components, a hook and a job
 * follower) can hold the same channel; it is unsubscribed when the last one lets go.
 */
import type { SwitchyardClient } from './client.js';
import type { SubscribeOptions, SubscriptionInfo } from './types.js';

const holders = new WeakMap<SwitchyardClient, Map<string, number>>();

export interface ChannelLease {
  /** Resolves when the subscription is confirmed (see `client.subscribe`). */
  readonly ready: Promise<SubscriptionInfo>;
  /** Lets go of the channel; the last holder unsubscribes. Idempotent. */
  release(): void;
}

/** Holds `channel` on `client`, subscribing on the first hold (with `options`). */
export function acquireChannel(client: SwitchyardClient, channel: string, options: SubscribeOptions = {}): ChannelLease {
  let counts = holders.get(client);
  if (counts === undefined) {
    counts = new Map();
    holders.set(client, counts);
  }
  const map = counts;
  map.set(channel, (map.get(channel) ?? 0) + 1);
  const ready = client.subscribe(channel, options);
  // The holder may never look at `ready`; its rejection must not go unhandled.
  ready.catch(() => undefined);
  let released = false;
  return {
    ready,
    release() {
      if (released) return;
      released = true;
      const n = (map.get(channel) ?? 1) - 1;
      if (n > 0) {
        map.set(channel, n);
        return;
      }
      map.delete(channel);
      client.unsubscribe(channel).catch(() => undefined);
    },
  };
}
