/**
 * `<SwitchyardProvider>`: one client per provider and configuration, owned by React.
 *
 * - The client is made during render with `autoConnect: false` (no socket, no timer: a render
 *   React throws away leaves nothing behind) and connected by an effect.
 * - Unmounting closes it, one macrotask later: StrictMode's mount → unmount → mount and a Fast
 *   Refresh (hot reload) re-running effects find it again before then and keep it, so neither
 *   opens a second socket. A real unmount, or a new configuration, closes it.
 * - `token`, a `url` provider and `logger` are read through refs: a new function or token
 *   each render does not make a new client (a new token string is handed to `setToken`).
 */
import { createContext, createElement, useContext, useEffect, useRef, type ReactNode } from 'react';
import { SwitchyardClient, type ClientOptions, type TokenProvider, type UrlProvider } from './index.js';

const ClientContext = createContext<SwitchyardClient | null>(null);

export type SwitchyardProviderProps =
  | ({ client: SwitchyardClient; children?: ReactNode } & { [K in keyof ClientOptions]?: never })
  | (Omit<ClientOptions, 'autoConnect'> & { client?: never; children?: ReactNode });

interface Slot {
  readonly key: string;
  readonly client: SwitchyardClient;
  closeTimer: ReturnType<typeof setTimeout> | undefined;
}

const ids = new WeakMap<object, number>();
let nextId = 0;
/** A stable id for a function or class, so it can be part of a configuration key. */
function identity(value: unknown): string | undefined {
  if (typeof value !== 'function') return undefined;
  let id = ids.get(value);
  if (id === undefined) ids.set(value, (id = ++nextId));
  return `#${id}`;
}

/**
 * What makes a different client: everything but the token and the callbacks read through refs.
 * Objects (reconnect) are compared by value, classes (WebSocket) and `fetch` by identity.
 */
export function configKey(options: Omit<ClientOptions, 'autoConnect'>): string {
  const { token: _token, logger: _logger, url, WebSocket, fetch, reconnect, ...rest } = options;
  return JSON.stringify({
    url: typeof url === 'function' ? 'provider' : url,
    WebSocket: identity(WebSocket),
    fetch: identity(fetch),
    reconnect: reconnect === false ? false : reconnect === undefined ? undefined : { ...reconnect, delay: identity(reconnect.delay) },
    ...rest,
  });
}

/** Gives its subtree a client (`useSwitchyard()`; the hooks without a client argument use it). */
export function SwitchyardProvider(props: SwitchyardProviderProps): ReactNode {
  const { children, client: given, ...options } = props as Omit<ClientOptions, 'autoConnect'> & { client?: SwitchyardClient; children?: ReactNode };
  const latest = useRef(options);
  latest.current = options;
  const slot = useRef<Slot | null>(null);
  const key = given === undefined ? configKey(options) : '';
  if (given === undefined && (slot.current === null || slot.current.key !== key)) {
    const tokenOption = options.token;
    const urlOption = options.url;
    slot.current = {
      key,
      closeTimer: undefined,
      client: new SwitchyardClient({
        ...options,
        autoConnect: false,
        token: typeof tokenOption === 'function' ? (ctx) => (latest.current.token as TokenProvider)(ctx) : tokenOption,
        url: typeof urlOption === 'function' ? (ctx) => (latest.current.url as UrlProvider)(ctx) : urlOption,
        logger: {
          debug: (m, c) => latest.current.logger?.debug?.(m, c),
          warn: (m, c) => latest.current.logger?.warn?.(m, c),
          error: (m, c) => latest.current.logger?.error?.(m, c),
        },
      }),
    };
  }
  const owned = given === undefined ? slot.current : null;
  const client = given ?? owned!.client;

  useEffect(() => {
    if (owned === null) return undefined;
    clearTimeout(owned.closeTimer);
    owned.closeTimer = undefined;
    owned.client.connect();
    return () => {
      owned.closeTimer = setTimeout(() => {
        owned.closeTimer = undefined;
        void owned.client.close();
      }, 0);
    };
  }, [owned]);

  // A new token string goes to the live client instead of making a new one.
  const token = given === undefined ? options.token : undefined;
  const applied = useRef(token);
  useEffect(() => {
    if (owned === null || typeof token !== 'string' || applied.current === token) return;
    applied.current = token;
    owned.client.setToken(token);
  }, [owned, token]);

  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client of the nearest `<SwitchyardProvider>`. */
export function useSwitchyard(): SwitchyardClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('useSwitchyard(): no <SwitchyardProvider> above this component; wrap the app in <SwitchyardProvider url=... token=...>');
  return client;
}

/** The provider's client, or null outside a provider (for hooks that also take one as an argument). */
export function useOptionalSwitchyard(): SwitchyardClient | null {
  return useContext(ClientContext);
}
