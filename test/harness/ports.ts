import { createServer } from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (for servers that cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port P whose P+offset is free too (Redis Cluster's bus port is P+10000). */
export async function freePortPair(offset: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if ((await portIsFree(port)) && (await portIsFree(port + offset))) return port;
  }
  throw new Error('no free port pair found');
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
