/** What the rebalancer knows of one node (from the registry's heartbeats). */
export interface NodeLoad {
  id: string;
  connections: number;
  draining: boolean;
}

export interface RebalanceOptions {
  /** Shed only above mean × (1 + threshold). */
  threshold: number;
  /** Never shed more than this many clients per second. */
  maxPerS: number;
  /** Below this many connections a node never sheds: too few to be worth moving. */
  minConnections: number;
}

/**
 * How many clients this node should shed now. A node sheds only when the cluster is
 * settled (two or more nodes, none draining), it is above the mean by more than the
 * threshold, and never below the mean itself ("below target"): it sheds half its excess
 * over the mean per call, at most `maxPerS` (called once a heartbeat, at most once a second).
 */
export function planShed(self: NodeLoad, nodes: readonly NodeLoad[], options: RebalanceOptions): number {
  const others = nodes.filter((n) => n.id !== self.id);
  if (others.length === 0 || self.draining || others.some((n) => n.draining)) return 0;
  const all = [self, ...others];
  const mean = all.reduce((sum, n) => sum + n.connections, 0) / all.length;
  if (self.connections < options.minConnections) return 0;
  if (self.connections <= mean * (1 + options.threshold)) return 0;
  // Half the excess per round: every loaded node sheds at once and the figures it sees are a
  // heartbeat old, so moving all of it would overshoot and bounce clients back and forth.
  return Math.max(1, Math.min(options.maxPerS, Math.floor((self.connections - mean) / 2)));
}
