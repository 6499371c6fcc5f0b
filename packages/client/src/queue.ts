/**
 * The offline send queue: requests made while the client is not connected wait here, in
 * order, and go out once it is. Bounded: past `limit` a new request is refused (the caller
 * gets an error) rather than an old one silently dropped.
 */

/** Requests kept while offline. */
export const DEFAULT_MAX_QUEUED_REQUESTS = 100;

export class BoundedQueue<T> {
  readonly limit: number;
  #items: T[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`queue limit must be a non-negative integer, got ${limit}`);
    this.limit = limit;
  }

  get size(): number {
    return this.#items.length;
  }

  /** False (and nothing added) when the queue is full. */
  offer(item: T): boolean {
    if (this.#items.length >= this.limit) return false;
    this.#items.push(item);
    return true;
  }

  /** Removes one item (a request that timed out while waiting); false when it was not there. */
  remove(item: T): boolean {
    const i = this.#items.indexOf(item);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    return true;
  }

  /** Takes every item, oldest first, leaving the queue empty. */
  drain(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }
}
