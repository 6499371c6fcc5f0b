import { describe, expect, it } from 'vitest';
import { NodeSampler, busiest, mergeChannels, type ChannelCount } from '../src/console/sampler.js';

describe('NodeSampler', () => {
  it('reports sessions, subscriptions and per-channel rates from seq deltas between samples', () => {
    let channels: ChannelCount[] = [
      { channel: 'a', subscribers: 2, seq: 10 },
      { channel: 'b', subscribers: 5, seq: 0 },
    ];
    const sampler = new NodeSampler({ sessions: () => 3, channels: () => channels }, 0);
    const first = sampler.sample(1_000);
    expect(first).toMatchObject({ sessions: 3, subscriptions: 7, channels: 2 });
    // No rate before a second sample; ties broken by subscribers.
    expect(first.top_channels.map((c) => [c.channel, c.events_per_s])).toEqual([['b', 0], ['a', 0]]);
    expect(first.rss_bytes).toBeGreaterThan(0);
    expect(first.cpu_percent).toBeGreaterThanOrEqual(0);
    channels = [
      { channel: 'a', subscribers: 2, seq: 30 },
      { channel: 'b', subscribers: 5, seq: 4 },
      { channel: 'c', subscribers: 1, seq: 100 },
    ];
    const second = sampler.sample(3_000);
    expect(second.top_channels).toEqual([
      { channel: 'a', subscribers: 2, seq: 30, events_per_s: 10 },
      { channel: 'b', subscribers: 5, seq: 4, events_per_s: 2 },
      { channel: 'c', subscribers: 1, seq: 100, events_per_s: 0 },
    ]);
    // A seq that went back (history reset) gives no rate, never a negative one.
    channels = [{ channel: 'a', subscribers: 1, seq: 3 }];
    expect(sampler.sample(4_000).top_channels).toEqual([{ channel: 'a', subscribers: 1, seq: 3, events_per_s: 0 }]);
  });

  it('reuses a sample for minIntervalMs', () => {
    let sessions = 1;
    const sampler = new NodeSampler({ sessions: () => sessions, channels: () => [] }, 500);
    expect(sampler.sample(1_000).sessions).toBe(1);
    sessions = 2;
    expect(sampler.sample(1_400).sessions).toBe(1);
    expect(sampler.sample(1_500).sessions).toBe(2);
  });
});

describe('busiest and mergeChannels', () => {
  it('keeps the n busiest by rate, then subscribers, then name', () => {
    const list = [
      { channel: 'z', subscribers: 1, seq: 1, events_per_s: 0 },
      { channel: 'y', subscribers: 1, seq: 1, events_per_s: 0 },
      { channel: 'x', subscribers: 9, seq: 1, events_per_s: 0 },
      { channel: 'w', subscribers: 0, seq: 1, events_per_s: 5 },
    ];
    expect(busiest(list, 3).map((c) => c.channel)).toEqual(['w', 'x', 'y']);
  });

  it('adds subscribers over nodes and keeps the highest rate and seq', () => {
    const merged = mergeChannels(
      [
        [{ channel: 'news', subscribers: 3, seq: 40, events_per_s: 2 }],
        [
          { channel: 'news', subscribers: 4, seq: 41, events_per_s: 2.5 },
          { channel: 'quiet', subscribers: 1, seq: 1, events_per_s: 0 },
        ],
      ],
      10,
    );
    expect(merged).toEqual([
      { channel: 'news', subscribers: 7, seq: 41, events_per_s: 2.5 },
      { channel: 'quiet', subscribers: 1, seq: 1, events_per_s: 0 },
    ]);
    expect(mergeChannels([[{ channel: 'a', subscribers: 1, seq: 1, events_per_s: 1 }]], 0)).toEqual([]);
  });
});
