import type { FailureClass } from '@switchyard/jobs';
import type { Json } from '@switchyard/protocol';

/** Longest stdout line looked at; longer ones are dropped whole. */
export const DEFAULT_MAX_LINE_BYTES = 65_536;
export const MAX_STAGE_LENGTH = 200;
export const MAX_MESSAGE_LENGTH = 1000;

/**
 * Splits a byte stream into lines with bounded memory: at most `maxLineBytes` of a line are
 * held; the rest of an overlong line is skipped up to its newline and reported once through
 * `onOverlong`. A final line without a newline is delivered by `end()`.
 */
export class LineSplitter {
  readonly #max: number;
  readonly #onLine: (line: string) => void;
  readonly #onOverlong: (bytes: number) => void;
  #parts: Buffer[] = [];
  #held = 0;
  /** Bytes of the overlong line being skipped; -1 while not skipping. */
  #skipped = -1;

  constructor(onLine: (line: string) => void, options: { maxLineBytes?: number; onOverlong?: (bytes: number) => void } = {}) {
    this.#max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#onLine = onLine;
    this.#onOverlong = options.onOverlong ?? (() => {});
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.#skipped >= 0) {
        this.#skipped += piece.length;
      } else if (this.#held + piece.length > this.#max) {
        this.#skipped = this.#held + piece.length;
        this.#parts = [];
        this.#held = 0;
      } else if (piece.length > 0) {
        // Copy: the stream may reuse the chunk's memory.
        this.#parts.push(Buffer.from(piece));
        this.#held += piece.length;
      }
      if (nl < 0) return;
      this.#flush();
      start = nl + 1;
    }
  }

  /** Delivers a last line that had no newline. */
  end(): void {
    if (this.#held > 0 || this.#skipped >= 0) this.#flush();
  }

  #flush(): void {
    if (this.#skipped >= 0) {
      const n = this.#skipped;
      this.#skipped = -1;
      this.#onOverlong(n);
      return;
    }
    const line = Buffer.concat(this.#parts, this.#held).toString('utf8');
    this.#parts = [];
    this.#held = 0;
    this.#onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}

/** What one stdout line says. */
export type PipelineLine =
  | { kind: 'progress'; progress?: number; stage?: string; message?: string }
  | { kind: 'result'; result: Json }
  | { kind: 'error'; error: string; class?: FailureClass }
  | { kind: 'text'; text: string };

const CLASSES = new Set(['transient', 'permanent', 'unknown']);

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * Reads one stdout line of a pipeline (PROTOCOL.md §7): a JSON object with `progress` (0–1),
 * `stage`, `message` is progress; `{"result": ...}` is the job's result; `{"error": "...",
 * "class": "permanent"}` declares why it is failing. Anything else — text, other JSON,
 * progress out of range — is plain output, never an error.
 */
export function parsePipelineLine(line: string): PipelineLine {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return { kind: 'text', text: line };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { kind: 'text', text: line };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'text', text: line };
  const o = value as Record<string, unknown>;
  if ('result' in o) return { kind: 'result', result: (o['result'] ?? null) as Json };
  if (typeof o['error'] === 'string') {
    const cls = o['class'];
    return { kind: 'error', error: clip(o['error'], MAX_MESSAGE_LENGTH), ...(typeof cls === 'string' && CLASSES.has(cls) && { class: cls as FailureClass }) };
  }
  const p = o['progress'];
  const stage = o['stage'];
  const message = o['message'];
  const hasProgress = typeof p === 'number' && Number.isFinite(p);
  if (!hasProgress && typeof stage !== 'string' && typeof message !== 'string') return { kind: 'text', text: line };
  const out: { kind: 'progress'; progress?: number; stage?: string; message?: string } = { kind: 'progress' };
  if (hasProgress) out.progress = Math.min(1, Math.max(0, p));
  if (typeof stage === 'string') out.stage = clip(stage, MAX_STAGE_LENGTH);
  if (typeof message === 'string') out.message = clip(message, MAX_MESSAGE_LENGTH);
  return out;
}

/** Keeps the last `maxBytes` of a stream, for error messages. */
export class Tail {
  readonly #max: number;
  #text = '';

  constructor(maxBytes = 4096) {
    this.#max = maxBytes;
  }

  push(text: string): void {
    this.#text += text;
    if (this.#text.length > this.#max * 2) this.#text = this.#text.slice(-this.#max);
  }

  toString(): string {
    return this.#text.length > this.#max ? this.#text.slice(-this.#max) : this.#text;
  }

  /** The last non-empty line, clipped: the usual one-line reason. */
  lastLine(max = 500): string {
    const lines = this.toString().split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const last = lines[lines.length - 1] ?? '';
    return clip(last, max);
  }
}
