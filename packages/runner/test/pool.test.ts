import { describe, expect, it } from 'vitest';
import { SlotPool, type Slot } from '../src/index.js';

const SLOTS: Slot[] = [{ id: 'gpu0', gpu: '0' }, { id: 'gpu1', gpu: '1' }];

function intake() {
  const calls: string[] = [];
  return { calls, pause: () => calls.push('pause'), resume: () => calls.push('resume') };
}

describe('SlotPool: slots and flow control', () => {
  it('refuses to be built without a slot', () => {
    expect(() => new SlotPool([], intake())).toThrow(/at least one slot/);
  });

  it('pauses intake when as many tasks are busy as there are slots, resumes when one leaves', () => {
    const i = intake();
    const pool = new SlotPool(SLOTS, i);
    pool.enter();
    expect(i.calls).toEqual([]);
    pool.enter();
    expect(i.calls).toEqual(['pause']);
    expect(pool.paused).toBe(true);
    pool.leave();
    expect(i.calls).toEqual(['pause', 'resume']);
    expect(pool.busy).toBe(1);
  });

  it('pauses intake past the most delayed retries it holds, without slots', () => {
    const i = intake();
    const pool = new SlotPool(SLOTS, i, 2);
    pool.delay();
    pool.delay();
    expect(i.calls).toEqual(['pause']);
    expect(pool.busy).toBe(0);
    pool.undelay();
    expect(i.calls).toEqual(['pause', 'resume']);
    expect(pool.delayed).toBe(1);
  });

  it('hands slots out first come, first served, and a released slot to the oldest waiter', async () => {
    const pool = new SlotPool(SLOTS, intake());
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect([a?.id, b?.id]).toEqual(['gpu0', 'gpu1']);
    const order: string[] = [];
    const c = pool.acquire().then((s) => order.push(`c:${s?.id}`));
    const d = pool.acquire().then((s) => order.push(`d:${s?.id}`));
    pool.release(b!);
    pool.release(a!);
    await Promise.all([c, d]);
    expect(order).toEqual(['c:gpu1', 'd:gpu0']);
  });

  it('on close: pauses for good, gives waiters nothing, and hands out no slot again', async () => {
    const i = intake();
    const pool = new SlotPool([SLOTS[0]!], i);
    const held = (await pool.acquire())!;
    const waiting = pool.acquire();
    pool.close();
    expect(await waiting).toBeUndefined();
    expect(i.calls).toEqual(['pause']);
    pool.release(held);
    expect(await pool.acquire()).toBeUndefined();
    pool.enter();
    pool.leave();
    pool.leave();
    expect(i.calls).toEqual(['pause']);
  });
});
