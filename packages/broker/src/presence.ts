/**
 * Who is in a channel (PROTOCOL.md §9 "Presence"), cluster-wide. The edge keeps the truth of
 * its own connections and tells the store each change; the store keeps the sum over every live
 * node, decides atomically when a user's first connection anywhere starts and its last ends, and
 * then sends `join` / `leave` to the channel's subscribers through the broker's pub/sub — without
 * a seq, never in history.
 */

export interface PresenceUser {
  readonly user_id: string;
  readonly connections: number;
  /** The token's `info` claim, as JSON text; absent when the token had none. */
  readonly infoJson?: string;
}

export interface PresenceSnapshot {
  /** Users present. */
  readonly count: number;
  /** Their connections, all together. */
  readonly connections: number;
  /** At most the `maxUsers` asked for, sorted by user id. */
  readonly users: readonly PresenceUser[];
  readonly truncated: boolean;
}

/** Hands a `join`/`leave` frame to the channel's subscribers on this node. */
export type PresenceSignal = (channel: string, frame: string) => void;

/**
 * Storage concern 6, presence: who is in a channel, cluster-wide, counted per node so that a
 * node that dies is taken back out; `join`/`leave` go out when a user's total crosses zero.
 */
export interface PresenceStore {
  /**
   * `n` more connections of `userId` on this node in `channel`. `fresh`: this node had no one
   * in the channel before (else, if the store no longer knows this node, it was declared dead
   * meanwhile: nothing is applied and the answer is 'lost', so the caller restores all its entries).
   */
  join(channel: string, userId: string, infoJson: string | undefined, n: number, fresh: boolean): Promise<'joined' | 'ok' | 'lost'>;
  /** One connection fewer; 'left' when it was the user's last anywhere. */
  leave(channel: string, userId: string): Promise<'left' | 'ok'>;
  /** Users and connections now, after dropping what dead nodes left behind. */
  get(channel: string, maxUsers: number): Promise<PresenceSnapshot>;
  /**
   * Keeps this node's entries of `channel` alive and clears those of nodes that stopped
   * doing so. 'lost': this node's own entries had been cleared (it was too slow): restore them.
   */
  heartbeat(channel: string): Promise<'ok' | 'lost'>;
  /**
   * Makes this node's entries of `channel` exactly `users` (after the store gave the node up, or
   * after a join or leave that could not be recorded), announcing who joined or left by it.
   */
  sync(channel: string, users: readonly PresenceUser[]): Promise<void>;
}

/** A `join` frame is this prefix, the JSON string of the user id, `,"info":<info>` when there is one, and `}`. */
export function joinPrefix(channel: string): string {
  return `{"type":"join","channel":${JSON.stringify(channel)},"user_id":`;
}

export function joinFrame(channel: string, userId: string, infoJson: string | undefined): string {
  return `${joinPrefix(channel)}${JSON.stringify(userId)}${infoJson === undefined ? '' : `,"info":${infoJson}`}}`;
}

/** A `leave` frame is this prefix, the JSON string of the user id, and `}`. */
export function leavePrefix(channel: string): string {
  return `{"type":"leave","channel":${JSON.stringify(channel)},"user_id":`;
}

export function leaveFrame(channel: string, userId: string): string {
  return `${leavePrefix(channel)}${JSON.stringify(userId)}}`;
}

interface MemoryEntry {
  connections: number;
  infoJson: string | undefined;
}

/** A single node's presence: the same answers as the Redis store gives a cluster. */
export class MemoryPresence implements PresenceStore {
  readonly #channels = new Map<string, Map<string, MemoryEntry>>();
  readonly #signal: PresenceSignal;

  constructor(signal: PresenceSignal) {
    this.#signal = signal;
  }

  /** `fresh` does not matter here: a lone node is never given up. */
  async join(channel: string, userId: string, infoJson: string | undefined, n: number, _fresh = true): Promise<'joined' | 'ok'> {
    let users = this.#channels.get(channel);
    if (users === undefined) {
      users = new Map();
      this.#channels.set(channel, users);
    }
    const entry = users.get(userId);
    if (entry !== undefined) {
      entry.connections += n;
      if (infoJson !== undefined) entry.infoJson = infoJson;
      return 'ok';
    }
    users.set(userId, { connections: n, infoJson });
    this.#signal(channel, joinFrame(channel, userId, infoJson));
    return 'joined';
  }

  async leave(channel: string, userId: string): Promise<'left' | 'ok'> {
    const users = this.#channels.get(channel);
    const entry = users?.get(userId);
    if (users === undefined || entry === undefined) return 'ok';
    if (--entry.connections > 0) return 'ok';
    users.delete(userId);
    if (users.size === 0) this.#channels.delete(channel);
    this.#signal(channel, leaveFrame(channel, userId));
    return 'left';
  }

  async get(channel: string, maxUsers: number): Promise<PresenceSnapshot> {
    const users = this.#channels.get(channel) ?? new Map<string, MemoryEntry>();
    let connections = 0;
    for (const e of users.values()) connections += e.connections;
    const ids = [...users.keys()].sort().slice(0, maxUsers);
    return {
      count: users.size,
      connections,
      users: ids.map((id) => {
        const e = users.get(id)!;
        return { user_id: id, connections: e.connections, ...(e.infoJson !== undefined && { infoJson: e.infoJson }) };
      }),
      truncated: users.size > ids.length,
    };
  }

  /** One process: nothing can die without it. */
  async heartbeat(): Promise<'ok'> {
    return 'ok';
  }

  /** A single node holds every entry: `users` replaces them all. */
  async sync(channel: string, users: readonly PresenceUser[]): Promise<void> {
    const before = this.#channels.get(channel) ?? new Map<string, MemoryEntry>();
    const after = new Map<string, MemoryEntry>();
    for (const u of users) if (u.connections > 0) after.set(u.user_id, { connections: u.connections, infoJson: u.infoJson });
    if (after.size > 0) this.#channels.set(channel, after);
    else this.#channels.delete(channel);
    for (const [id, e] of after) if (!before.has(id)) this.#signal(channel, joinFrame(channel, id, e.infoJson));
    for (const id of before.keys()) if (!after.has(id)) this.#signal(channel, leaveFrame(channel, id));
  }
}
