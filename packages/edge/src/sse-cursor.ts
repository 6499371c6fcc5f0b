import { createHash } from 'node:crypto';
import { SwitchyardError } from './errors.js';

/**
 * The `id:` of an SSE event: where the stream stands on every one of its channels, so that a
 * reconnecting EventSource's `Last-Event-ID` alone is enough to resume each of them exactly.
 *
 * Format: `1` then, per channel, `.` + 8 characters naming the channel + 6 naming its history
 * epoch + the seq in base 36, e.g. `1.Xk3v9QaBc0ZyQ1k2` for one channel. Names are hashed
 * (base64url of SHA-256, truncated) so that any channel name (200 characters of `: / @ . -`)
 * costs the same 14 characters: 16 channels stay near 300 bytes, well inside any proxy's
 * header limit, and nothing in it needs escaping in a header or an `id:` line. The stream's
 * own channel list (from its URL) turns the tags back into names; an epoch tag is compared
 * with the channel's current epoch, and a mismatch means the history was reset (`recovered:false`).
 */

const VERSION = '1';
const CHANNEL_TAG_LEN = 8;
const EPOCH_TAG_LEN = 6;
/** 16 channels × (1 + 14 + 11) plus slack: anything longer is not ours. */
export const MAX_CURSOR_LENGTH = 1024;

export class CursorError extends SwitchyardError {
  override readonly name = 'CursorError';
  constructor(message: string) {
    super('bad_cursor', message);
  }
}

function tag(text: string, length: number): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, length);
}

export function channelTag(channel: string): string {
  return tag(channel, CHANNEL_TAG_LEN);
}

export function epochTag(epoch: string): string {
  return tag(epoch, EPOCH_TAG_LEN);
}

/** One channel's place in a decoded cursor. */
export interface CursorPosition {
  epochTag: string;
  seq: number;
}

/** Channel tag → position; throws CursorError on anything malformed. */
export function decodeCursor(text: string): Map<string, CursorPosition> {
  if (text.length > MAX_CURSOR_LENGTH) throw new CursorError(`Last-Event-ID longer than ${MAX_CURSOR_LENGTH} characters`);
  const parts = text.split('.');
  if (parts[0] !== VERSION) throw new CursorError('Last-Event-ID is not a cursor from this server');
  const out = new Map<string, CursorPosition>();
  for (const part of parts.slice(1)) {
    const head = CHANNEL_TAG_LEN + EPOCH_TAG_LEN;
    const seqText = part.slice(head);
    if (part.length <= head || !/^[A-Za-z0-9_-]+$/.test(part.slice(0, head)) || !/^[0-9a-z]{1,11}$/.test(seqText)) {
      throw new CursorError(`Last-Event-ID has a malformed entry "${part.slice(0, 40)}"`);
    }
    const seq = parseInt(seqText, 36);
    if (!Number.isSafeInteger(seq)) throw new CursorError('Last-Event-ID has a seq out of range');
    out.set(part.slice(0, CHANNEL_TAG_LEN), { epochTag: part.slice(CHANNEL_TAG_LEN, head), seq });
  }
  return out;
}

/**
 * A stream's live cursor. The encoded form is rebuilt only for the channel that moved, and
 * cached until the next move, so an event costs one short string join.
 */
export class StreamCursor {
  readonly #index = new Map<string, number>();
  readonly #heads: string[] = [];
  readonly #seqs: number[] = [];
  readonly #epochs: (string | undefined)[] = [];
  readonly #channelTags: string[];
  #encoded: string | undefined;
  #singleHead: string | undefined;

  constructor(channels: readonly string[]) {
    this.#channelTags = channels.map(channelTag);
    channels.forEach((c, i) => {
      this.#index.set(c, i);
      this.#heads.push('');
      this.#seqs.push(0);
      this.#epochs.push(undefined);
    });
  }

  /** Where `channel` stands now, undefined before its first position is known. */
  position(channel: string): { epoch: string; seq: number } | undefined {
    const i = this.#index.get(channel);
    const epoch = i === undefined ? undefined : this.#epochs[i];
    return epoch === undefined ? undefined : { epoch, seq: this.#seqs[i!]! };
  }

  set(channel: string, epoch: string, seq: number): void {
    const i = this.#index.get(channel);
    if (i === undefined) return;
    if (this.#epochs[i] !== epoch) {
      this.#epochs[i] = epoch;
      this.#heads[i] = '.' + this.#channelTags[i] + epochTag(epoch);
      if (this.#heads.length === 1) this.#singleHead = VERSION + this.#heads[0];
    }
    this.#seqs[i] = seq;
    this.#encoded = undefined;
  }

  /** An event of the channel's current epoch. */
  advance(channel: string, seq: number): void {
    const i = this.#index.get(channel);
    if (i === undefined || this.#epochs[i] === undefined) return;
    this.#seqs[i] = seq;
    this.#encoded = undefined;
  }

  /**
   * For a stream of one channel with a position: the cursor up to the seq, which every such
   * stream of the channel in the same epoch shares, so one message can serve them all.
   */
  singleHead(): string | undefined {
    return this.#singleHead;
  }

  encode(): string {
    if (this.#encoded !== undefined) return this.#encoded;
    let out = VERSION;
    for (let i = 0; i < this.#heads.length; i++) if (this.#epochs[i] !== undefined) out += this.#heads[i] + this.#seqs[i]!.toString(36);
    this.#encoded = out;
    return out;
  }
}
