/** What the wheel keeps on each item, so that removing one needs no lookup table of its own. */
export interface Expiring {
  /** The second the item is filed under; 0 when not armed. */
  expirySecond: number;
}

/**
 * One timer for every connection's token expiry, instead of a `setTimeout` (and its timer
 * object) per connection: items are filed by the second their token expires, and a tick
 * hands each second's items to `onExpire` once that second has begun — never early, at most
 * a tick late. The tick runs only while something is armed.
 */
export class ExpiryWheel<T extends Expiring> {
  readonly #buckets = new Map<number, Set<T>>();
  /** The next second to hand out; everything before it has been. */
  #next = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly onExpire: (item: T) => void,
    readonly tickMs = 250,
  ) {}

  get size(): number {
    let n = 0;
    for (const items of this.#buckets.values()) n += items.size;
    return n;
  }

  /** Files `item` under `expSeconds` (seconds since the epoch), replacing where it was. */
  arm(item: T, expSeconds: number): void {
    this.disarm(item);
    const now = Math.floor(Date.now() / 1000);
    if (this.#timer === undefined) {
      // Restarting: from now, or from the earliest second still filed (armed before a stop()).
      this.#next = now;
      for (const filed of this.#buckets.keys()) if (filed < this.#next) this.#next = filed;
    }
    // Already due: handed out at the next tick, like a timeout of 0.
    const second = Math.max(Math.floor(expSeconds), this.#next);
    let items = this.#buckets.get(second);
    if (items === undefined) {
      items = new Set();
      this.#buckets.set(second, items);
    }
    items.add(item);
    item.expirySecond = second;
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.tickMs);
      this.#timer.unref();
    }
  }

  disarm(item: T): void {
    const second = item.expirySecond;
    if (second === 0) return;
    item.expirySecond = 0;
    const items = this.#buckets.get(second);
    if (items === undefined) return;
    items.delete(item);
    if (items.size === 0) this.#buckets.delete(second);
    if (this.#buckets.size === 0) this.stop();
  }

  #tick(): void {
    const now = Math.floor(Date.now() / 1000);
    for (; this.#next <= now; this.#next++) {
      const items = this.#buckets.get(this.#next);
      if (items === undefined) continue;
      this.#buckets.delete(this.#next);
      for (const item of items) {
        item.expirySecond = 0;
        this.onExpire(item);
      }
    }
    if (this.#buckets.size === 0) this.stop();
  }

  /** Stops the tick; what is still armed stays filed and is handed out if the wheel is armed again. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
