import { CloseCode } from '@switchyard/protocol';
import type { Logger } from 'pino';

/**
 * Runs a uWS callback so that an exception in it reaches the log and the one connection
 * concerned, never the process (uWS would abort on an exception escaping a callback).
 * `recover` is what the connection gets instead; if it throws too, the socket is already gone.
 */
export function guarded(log: Pick<Logger, 'error'>, where: string, fn: () => void, recover?: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error({ err, where }, 'handler failed');
    try {
      recover?.();
    } catch {
      /* the socket is already gone */
    }
  }
}

/**
 * The WebSocket `open` handler: a connection the node failed to set up is closed 1011
 * `internal_error` (the contract's code for it), and nothing else is disturbed.
 */
export function openHandler<S extends { end(code?: number, reason?: string): unknown }>(log: Pick<Logger, 'error'>, onOpen: (ws: S) => void): (ws: S) => void {
  return (ws) => guarded(log, 'open', () => onOpen(ws), () => ws.end(CloseCode.InternalError, 'internal_error'));
}
