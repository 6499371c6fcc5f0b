import type { ChannelStat, NodeStats } from '@switchyard/sessions';

/** One channel with local subscribers: how many, and its latest seq. */
export interface ChannelCount {
  channel: string;
  subscribers: number;
  seq: number;
}

export interface SamplerSource {
  sessions(): number;
  channels(): Iterable<ChannelCount>;
}

/** Channels each node reports; the console merges them across the cluster. */
export const TOP_CHANNELS = 20;

/**
 * Samples what a node reports in its registry heartbeat. Rates come from seq deltas between
 * two samples (seq rises by exactly 1 per event), so the delivery path pays nothing for them.
 * A sample is reused for `minIntervalMs`: the in-memory registry asks for it on every read.
 */
export class NodeSampler {
  readonly #source: SamplerSource;
  readonly #minIntervalMs: number;
  #last: NodeStats | undefined;
  #cpu = process.cpuUsage();
  #cpuAt = performance.now();
  #seqs = new Map<string, { seq: number; at: number }>();

  constructor(source: SamplerSource, minIntervalMs: number) {
    this.#source = source;
    this.#minIntervalMs = minIntervalMs;
  }

  sample(now = Date.now()): NodeStats {
    if (this.#last !== undefined && now - this.#last.sampled_at < this.#minIntervalMs) return this.#last;
    const wall = performance.now();
    const cpu = process.cpuUsage(this.#cpu);
    const wallUs = Math.max(1, (wall - this.#cpuAt) * 1000);
    this.#cpu = process.cpuUsage();
    this.#cpuAt = wall;
    const mem = process.memoryUsage();
    const seqs = new Map<string, { seq: number; at: number }>();
    const all: ChannelStat[] = [];
    let subscriptions = 0;
    for (const c of this.#source.channels()) {
      subscriptions += c.subscribers;
      const prev = this.#seqs.get(c.channel);
      const dt = prev === undefined ? 0 : (now - prev.at) / 1000;
      // A seq that went back means the channel's history was reset: no rate for this round.
      const rate = prev !== undefined && dt > 0 && c.seq >= prev.seq ? (c.seq - prev.seq) / dt : 0;
      seqs.set(c.channel, { seq: c.seq, at: now });
      all.push({ channel: c.channel, subscribers: c.subscribers, seq: c.seq, events_per_s: round(rate) });
    }
    this.#seqs = seqs;
    this.#last = {
      sessions: this.#source.sessions(),
      subscriptions,
      channels: all.length,
      cpu_percent: round(((cpu.user + cpu.system) / wallUs) * 100),
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      top_channels: busiest(all, TOP_CHANNELS),
      sampled_at: now,
    };
    return this.#last;
  }
}

/** By events per second, then subscribers, then name (a stable order for the page). */
export function busiest(channels: ChannelStat[], n: number): ChannelStat[] {
  return channels
    .sort((a, b) => b.events_per_s - a.events_per_s || b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0))
    .slice(0, n);
}

/**
 * The cluster's busiest channels from every node's report: subscribers add up; each node
 * with subscribers sees every event of the channel, so the rate and seq are the highest seen.
 */
export function mergeChannels(reports: readonly (readonly ChannelStat[])[], n: number): ChannelStat[] {
  const merged = new Map<string, ChannelStat>();
  for (const report of reports) {
    for (const c of report) {
      const m = merged.get(c.channel);
      if (m === undefined) merged.set(c.channel, { ...c });
      else {
        m.subscribers += c.subscribers;
        m.events_per_s = Math.max(m.events_per_s, c.events_per_s);
        m.seq = Math.max(m.seq, c.seq);
      }
    }
  }
  return busiest([...merged.values()], n);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
