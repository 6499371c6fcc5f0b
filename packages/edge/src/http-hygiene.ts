/**
 * PROTOCOL.md §9 "HTTP hygiene": CORS for the origins in ALLOWED_ORIGINS, `nosniff` on every
 * answer, `no-store` on answers that carry secrets or per-user state. One function decides the
 * headers of every HTTP answer the edge writes (routes, preflights, refused upgrades), so a new
 * endpoint (SSE, console) gets them by going through `route`.
 */

export type HeaderList = readonly (readonly [string, string])[];

export const CORS_ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
export const CORS_ALLOW_HEADERS = 'Authorization, Content-Type';
/** How long a browser may cache a preflight answer. */
const CORS_MAX_AGE_S = 600;
/** The cluster headers of PROTOCOL.md §6, readable by a cross-origin page. */
const CORS_EXPOSE_HEADERS = 'X-WebSocket-Worker-ID, X-WebSocket-Local-Connections, X-WebSocket-Total-Sessions, X-WebSocket-Total-Workers';
/** Paths whose answers hold tokens or job state: never cached by a browser or a proxy. */
const NO_STORE_PREFIXES = ['/auth/token', '/jobs'];

/** The request's facts the headers depend on. */
export interface HygieneRequest {
  url: string;
  origin: string;
}

/** True when `origin` is listed; nothing is allowed while ALLOWED_ORIGINS is unset. */
export function corsAllowed(origin: string, allowed: readonly string[] | undefined): boolean {
  return allowed !== undefined && origin !== '' && allowed.includes(origin);
}

function noStore(url: string): boolean {
  return NO_STORE_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`) || url.startsWith(`${p}?`));
}

/** Headers every answer to `req` carries on top of the cluster headers. */
export function hygieneHeaders(req: HygieneRequest | undefined, allowed: readonly string[] | undefined): HeaderList {
  const out: [string, string][] = [['X-Content-Type-Options', 'nosniff']];
  if (req === undefined) return out;
  if (noStore(req.url)) out.push(['Cache-Control', 'no-store']);
  // The answer depends on Origin whenever origins are configured: caches must key on it.
  if (allowed !== undefined) out.push(['Vary', 'Origin']);
  if (corsAllowed(req.origin, allowed)) {
    out.push(['Access-Control-Allow-Origin', req.origin], ['Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS]);
  }
  return out;
}

/** The extra headers of a preflight (OPTIONS) answer; none for an origin not allowed. */
export function preflightHeaders(origin: string, allowed: readonly string[] | undefined): Record<string, string> {
  if (!corsAllowed(origin, allowed)) return {};
  return {
    'Access-Control-Allow-Methods': CORS_ALLOW_METHODS,
    'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
    'Access-Control-Max-Age': String(CORS_MAX_AGE_S),
  };
}
