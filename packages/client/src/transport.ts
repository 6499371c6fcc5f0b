/**
 * The least of the WebSocket API the client uses: what a browser's `WebSocket` and the `ws`
 * package both provide. Declared here so the client needs no DOM typings.
 */

export interface WebSocketMessageEvent {
  readonly data: unknown;
}
export interface WebSocketCloseEvent {
  readonly code: number;
  readonly reason: string;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: WebSocketMessageEvent) => void) | null;
  onclose: ((event: WebSocketCloseEvent) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `readyState` of an open socket (the same in browsers and `ws`). */
export const WS_OPEN = 1;

let nodeWebSocket: Promise<WebSocketConstructor> | undefined;

/**
 * The platform's WebSocket: the global one (browsers, Deno, Node 22+), else the `ws`
 * package, imported only then — so a browser bundle never pulls it in. The specifier is
 * kept out of a literal `import('ws')` so bundlers do not try to resolve it.
 */
export function platformWebSocket(): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === 'function') return Promise.resolve(global);
  nodeWebSocket ??= importWs();
  return nodeWebSocket;
}

async function importWs(): Promise<WebSocketConstructor> {
  const specifier = 'ws';
  try {
    const mod = (await import(/* @vite-ignore */ specifier)) as { default?: unknown; WebSocket?: unknown };
    const ctor = mod.WebSocket ?? mod.default;
    if (typeof ctor !== 'function') throw new Error('the "ws" package exports no WebSocket class');
    return ctor as WebSocketConstructor;
  } catch (err) {
    nodeWebSocket = undefined;
    throw new Error('no global WebSocket and the "ws" package could not be loaded; install "ws" or pass the "WebSocket" option', { cause: err });
  }
}
