import { BlockList, isIP } from 'node:net';
import { ConfigError } from '@switchyard/config';
import { ErrorCode } from '@switchyard/protocol';

/**
 * PROTOCOL.md §9 "Admission": who may open a connection on this node. Transport-neutral, so the
 * WebSocket upgrade and any other long-lived stream (SSE) share one count: a connection is
 * `pending` until it authenticates, then `authenticated`; every connection counts against its
 * client address.
 *
 * - `MAX_PENDING_AUTH`: connections not yet authenticated; they never count against
 *   `MAX_TOTAL_CONNECTIONS`, so sockets that never authenticate cannot lock users out.
 * - `MAX_TOTAL_CONNECTIONS`: authenticated connections.
 * - `MAX_CONNECTIONS_PER_IP` (0 = off): every connection of one client address. The address
 *   is the peer's, or from `X-Forwarded-For` when the peer is in `TRUSTED_PROXIES`.
 */
export interface AdmissionLimits {
  maxPendingAuth: number;
  maxTotalConnections: number;
  maxConnectionsPerIp: number;
  /** IPs or CIDR blocks of proxies whose X-Forwarded-For is believed. */
  trustedProxies?: readonly string[] | undefined;
}

/** Why a connection is refused before it opens; `status` is the HTTP answer. */
export interface Refusal {
  status: 429 | 503;
  code: typeof ErrorCode.TooManyConnections;
  error: string;
}

const IPV4_MAPPED = '::ffff:';

/** One textual form per address: uWS reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`. */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  return a.startsWith(IPV4_MAPPED) && isIP(a.slice(IPV4_MAPPED.length)) === 4 ? a.slice(IPV4_MAPPED.length) : a;
}

/** Parses TRUSTED_PROXIES entries (IPs or CIDR blocks); a bad entry is a ConfigError naming it. */
export function trustedProxyList(entries: readonly string[] | undefined): BlockList {
  const list = new BlockList();
  for (const raw of entries ?? []) {
    const [address, prefix, extra] = raw.trim().split('/');
    const ip = normalizeAddress(address ?? '');
    const family = isIP(ip);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const maxBits = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= maxBits))) {
      throw new ConfigError('TRUSTED_PROXIES', `has "${raw}", which is not an IP address or CIDR block (like 10.0.0.0/8)`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, bits, type);
  }
  return list;
}

function listed(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #trusted: BlockList;
  readonly #hasTrusted: boolean;
  #pending = 0;
  #authenticated = 0;
  readonly #byAddress = new Map<string, number>();

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
    this.#trusted = trustedProxyList(limits.trustedProxies);
    this.#hasTrusted = (limits.trustedProxies?.length ?? 0) > 0;
  }

  get pending(): number {
    return this.#pending;
  }

  get authenticated(): number {
    return this.#authenticated;
  }

  /**
   * The client's address: the peer, unless the peer is a trusted proxy; then the right-most
   * `X-Forwarded-For` hop that is not itself a trusted proxy (hops to its left were written by
   * the client and prove nothing). A malformed hop ends the walk at the last trusted one.
   */
  clientAddress(peer: string, forwardedFor: string): string {
    let address = normalizeAddress(peer);
    if (!this.#hasTrusted || forwardedFor === '' || !listed(this.#trusted, address)) return address;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(hops[i]!);
      if (isIP(hop) === 0) break;
      address = hop;
      if (!listed(this.#trusted, hop)) break;
    }
    return address;
  }

  /**
   * May a connection from `address` open now? `authenticated`: it carries a verified token
   * already (counts against MAX_TOTAL_CONNECTIONS rather than MAX_PENDING_AUTH). `inFlight`:
   * pending opens not yet counted (an upgrade waiting on a key fetch).
   */
  check(address: string, authenticated: boolean, inFlight = 0): Refusal | undefined {
    const l = this.#limits;
    if (l.maxConnectionsPerIp > 0 && (this.#byAddress.get(address) ?? 0) >= l.maxConnectionsPerIp) {
      return { status: 429, code: ErrorCode.TooManyConnections, error: `this address holds MAX_CONNECTIONS_PER_IP (${l.maxConnectionsPerIp}) connections` };
    }
    if (this.#authenticated + (authenticated ? inFlight : 0) >= l.maxTotalConnections) {
      return { status: 503, code: ErrorCode.TooManyConnections, error: 'node is at MAX_TOTAL_CONNECTIONS' };
    }
    if (!authenticated && this.#pending + inFlight >= l.maxPendingAuth) {
      return { status: 503, code: ErrorCode.TooManyConnections, error: 'node is at MAX_PENDING_AUTH unauthenticated connections' };
    }
    return undefined;
  }

  /** Counts a connection that has opened. Pair with `closed`. */
  opened(address: string, authenticated: boolean): void {
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
    if (authenticated) this.#authenticated++;
    else this.#pending++;
  }

  /**
   * A pending connection authenticates: false (and nothing changes) when the node is at
   * MAX_TOTAL_CONNECTIONS — the connection must then be refused.
   */
  authenticate(): boolean {
    if (this.#authenticated >= this.#limits.maxTotalConnections) return false;
    this.#pending--;
    this.#authenticated++;
    return true;
  }

  closed(address: string, authenticated: boolean): void {
    const n = (this.#byAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.#byAddress.delete(address);
    else this.#byAddress.set(address, n);
    if (authenticated) this.#authenticated--;
    else this.#pending--;
  }
}

/**
 * Spends one unit of a user's cluster-wide per-second budget (USER_RATE_LIMIT_PER_S), shared by
 * publishes, directs and JWT broadcasts (and any later transport). Fails open when the registry
 * cannot answer: a Redis blip must not stop every user.
 */
export function takeUserBudget(registry: { takeUserToken(userId: string, perS: number): Promise<boolean> }, userId: string, perS: number): Promise<boolean> {
  return registry.takeUserToken(userId, perS).catch(() => true);
}
