/**
 * Reading what the server sends. The frame shapes themselves are `@switchyard/protocol`'s,
 * imported as types only, so the browser bundle gains no server code.
 */
import type { ServerFrame } from '@switchyard/protocol';

/** The frames this client acts on; anything else is ignored, as a newer server may send more. */
const SERVER_TYPES = new Set<string>([
  'auth_success',
  'auth_error',
  'auth_expired',
  'subscription_result',
  'snapshot',
  'unsubscribed',
  'event',
  'direct',
  'ack',
  'pong',
  'error',
  'reconnect',
]);

/**
 * Parses one text frame from the server. Returns undefined for anything that is not a JSON
 * object with a known `type` (a newer server may send frames this client does not know).
 */
export function parseServerFrame(text: string): ServerFrame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !SERVER_TYPES.has(type)) return undefined;
  return value as ServerFrame;
}
