import { describe, expect, it } from 'vitest';
import { planShed, type NodeLoad } from '../src/rebalance.js';

const opts = { threshold: 0.1, maxPerS: 50, minConnections: 20 };
const node = (id: string, connections: number, draining = false): NodeLoad => ({ id, connections, draining });

describe('planShed', () => {
  it('sheds half the excess over the mean from a loaded node', () => {
    const self = node('a', 100);
    expect(planShed(self, [self, node('b', 100), node('c', 100), node('d', 0), node('e', 0)], opts)).toBe(20);
  });
  it('never sheds more than maxPerS', () => {
    const self = node('a', 1000);
    expect(planShed(self, [self, node('b', 0)], opts)).toBe(50);
  });
  it('does nothing alone, within the threshold, below the minimum, or while any node drains', () => {
    expect(planShed(node('a', 100), [node('a', 100)], opts)).toBe(0);
    const near = node('a', 105);
    expect(planShed(near, [near, node('b', 95)], opts)).toBe(0);
    const small = node('a', 15);
    expect(planShed(small, [small, node('b', 0)], opts)).toBe(0);
    const busy = node('a', 100);
    expect(planShed(busy, [busy, node('b', 0, true)], opts)).toBe(0);
    expect(planShed(node('a', 100, true), [node('b', 0)], opts)).toBe(0);
  });
  it('a node at or below the mean never sheds', () => {
    const self = node('a', 30);
    expect(planShed(self, [self, node('b', 60), node('c', 60)], opts)).toBe(0);
  });
});
