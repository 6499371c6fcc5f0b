import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The first port the kernel hands out as a client's source port. Ports a test picks must lie
 * below it: a server restarted on the same port (Redis, a Redis Cluster node, Kafka) is down for
 * a moment, and a port in the ephemeral range can be taken meanwhile as the source port of any
 * outgoing connection on the machine, or by a client reconnecting to that very port (a TCP
 * self-connect), and the restart then fails with "address in use" (seen: a Redis Cluster node
 * that never came back in a full run).
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return low;
  } catch {
    // not Linux: the IANA ephemeral range starts at 49152
  }
  return 32_768;
}

const LOW = 10_000;
const HIGH = ephemeralLow(); // exclusive

/** A random port in [LOW, HIGH - span) that was free a moment ago on 127.0.0.1. */
async function pickBelowEphemeral(span: number, free: (port: number) => Promise<boolean>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - span - LOW));
    if (await free(port)) return port;
  }
  throw new Error(`no free port found in ${LOW}..${HIGH - span}`);
}

/**
 * A port that was free a moment ago on 127.0.0.1 (for servers that cannot take port 0), picked
 * below the ephemeral range so that no client's source port can take it while its server restarts.
 */
export function freePort(): Promise<number> {
  return pickBelowEphemeral(0, portIsFree);
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port P whose P+offset is free too (Redis Cluster's bus port is P+10000). */
export function freePortPair(offset: number): Promise<number> {
  return pickBelowEphemeral(offset, async (port) => (await portIsFree(port)) && (await portIsFree(port + offset)));
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50)); // sleep-ok: poll interval of waitFor
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

/** True when a failed start says its port was taken (Node, Redis, nginx, HAProxy and Kafka all word it one of these ways). */
export function isAddressInUse(text: string): boolean {
  // The last one is the edge's own words ("cannot listen on HOST:PORT (in use, or not permitted)").
  return /EADDRINUSE|address already in use|address in use|cannot bind socket|BindException|cannot listen on \S+ \(in use/i.test(text);
}

/**
 * Starts something on a port picked by `pick` (freePort by default), picking again when the
 * start fails because the port was taken in the meantime: a free port is only free until the
 * child binds it, and other suites pick ports at the same time. Any other failure is thrown as is.
 */
export async function startOnFreePort<T>(start: (port: number) => Promise<T>, options: { attempts?: number; pick?: () => Promise<number> } = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const pick = options.pick ?? freePort;
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start(await pick());
    } catch (err) {
      if (!isAddressInUse(String(err instanceof Error ? err.message : err))) throw err;
      last = err;
    }
  }
  throw new Error(`every port tried was taken before the child bound it (${attempts} attempts): ${String(last)}`);
}
