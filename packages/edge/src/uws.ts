import { createRequire } from 'node:module';
import type * as UwsModule from 'uWebSockets.js';
import { UwsFallbackError } from './errors.js';

export type Uws = typeof UwsModule;
export type { TemplatedApp, WebSocket, HttpRequest, HttpResponse, us_listen_socket, us_socket_context_t, WebSocketBehavior } from 'uWebSockets.js';

let cached: Uws | undefined;

/**
 * Loads uWebSockets.js and proves it is the native addon. The package this repository
 * aliases (see README) quietly swaps in a `ws`-based shim when its binary does not load;
 * that shim is an order of magnitude slower and lacks native topic fan-out, so a node
 * must never run on it. `UWS_USE_FALLBACK` forces the shim and is refused for the same reason.
 */
export function loadUws(): Uws {
  if (cached !== undefined) return cached;
  const flag = process.env['UWS_USE_FALLBACK'];
  if (flag !== undefined && ['1', 'true'].includes(flag.toLowerCase())) {
    throw new UwsFallbackError('UWS_USE_FALLBACK is set');
  }
  const require = createRequire(import.meta.url);
  const warnings: string[] = [];
  const warn = console.warn;
  // The package reports its fallback on console.warn; capture it rather than letting it print.
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  let uws: Uws;
  try {
    uws = require('uWebSockets.js') as Uws;
  } finally {
    console.warn = warn;
  }
  if (!isNative(uws)) throw new UwsFallbackError(warnings.join(' ').trim() || 'the loaded module is not the native addon');
  cached = uws;
  return uws;
}

/**
 * The native addon's functions are host functions, whose source reads `{ [native code] }`;
 * the shim's are JavaScript (anchored, so a JavaScript body that merely mentions the words does not pass).
 */
export function isNative(uws: Partial<Uws>): boolean {
  return typeof uws.App === 'function' && /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(uws.App));
}
