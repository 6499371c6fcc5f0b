/**
 * A node's connections by user. Most users hold one connection, so a user's entry is that
 * connection itself until a second one arrives; only then a Set (a Set per user cost ~100 bytes
 * per idle connection).
 */
export class UserIndex<C> {
  readonly #byUser = new Map<string, C | Set<C>>();

  /** Users with at least one connection here. */
  get size(): number {
    return this.#byUser.size;
  }

  count(user: string): number {
    const entry = this.#byUser.get(user);
    return entry === undefined ? 0 : entry instanceof Set ? entry.size : 1;
  }

  /** The user's connections here; a copy-free view, not to be kept across an add or remove. */
  of(user: string): Iterable<C> {
    const entry = this.#byUser.get(user);
    return entry === undefined ? [] : entry instanceof Set ? entry : [entry];
  }

  add(user: string, conn: C): void {
    const entry = this.#byUser.get(user);
    if (entry === undefined) this.#byUser.set(user, conn);
    else if (entry instanceof Set) entry.add(conn);
    else if (entry !== conn) this.#byUser.set(user, new Set([entry, conn]));
  }

  remove(user: string, conn: C): void {
    const entry = this.#byUser.get(user);
    if (entry === undefined) return;
    if (!(entry instanceof Set)) {
      if (entry === conn) this.#byUser.delete(user);
      return;
    }
    entry.delete(conn);
    if (entry.size === 1) this.#byUser.set(user, entry.values().next().value as C);
    else if (entry.size === 0) this.#byUser.delete(user);
  }
}
