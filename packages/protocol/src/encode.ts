import type { ErrorCode } from './codes.js';
import type { Ref, ServerFrame } from './frames.js';

/**
 * Serialises an `event` frame by concatenation. This runs once per published message
 * (never per subscriber), and `dataJson` is already JSON, so it is spliced in as is rather
 * than parsed and re-stringified. Channel names are restricted to characters that need no
 * escaping in JSON, so only the event name goes through JSON.stringify.
 */
export function encodeEvent(channel: string, seq: number, event: string, dataJson: string, timestamp: number, coalesce?: string): string {
  return eventPrefix(channel) + seq + eventSuffix(event, dataJson, timestamp, coalesce);
}

/** The frame up to its seq; with `eventSuffix`, lets a store splice in a seq it assigns itself. */
export function eventPrefix(channel: string): string {
  return '{"type":"event","channel":"' + channel + '","seq":';
}

/**
 * The frame after its seq. A coalescing key, when there is one, is the last field: a reader
 * finds it from the end without parsing `data` (keys use channel-name characters only).
 */
export function eventSuffix(event: string, dataJson: string, timestamp: number, coalesce?: string): string {
  return (
    ',"event":' +
    JSON.stringify(event) +
    ',"data":' +
    dataJson +
    ',"timestamp":"' +
    new Date(timestamp).toISOString() +
    (coalesce === undefined ? '"}' : '","coalesce":"' + coalesce + '"}')
  );
}

/**
 * An event delivered only on this node while the broker is unreachable: it has no
 * cluster-wide seq and is not in history, and says so with `"degraded":true`.
 */
export function encodeLocalEvent(channel: string, event: string, dataJson: string, timestamp: number): string {
  const suffix = eventSuffix(event, dataJson, timestamp);
  return '{"type":"event","channel":"' + channel + '"' + suffix.slice(0, -1) + ',"degraded":true}';
}

export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

export function encodeError(code: ErrorCode, error: string, ref?: Ref): string {
  return JSON.stringify(ref === undefined ? { type: 'error', code, error } : { type: 'error', code, error, ref });
}
