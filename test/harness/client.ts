import WebSocket from 'ws';

export type Frame = Record<string, unknown> & { type: string };

export interface Closed {
  code: number;
  reason: string;
}

/**
 * A test client over the `ws` package: every received frame is queued, and `next` takes
 * the first one matching a predicate (skipping, but keeping, the others).
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  #waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  /** Frames not yet taken by `next`. */
  #unread: Frame[] = [];

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new UpgradeRefused(res.statusCode ?? 0)));
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.opened.catch(() => undefined);
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      const i = this.#waiters.findIndex((w) => w.match(frame));
      if (i >= 0) {
        const [w] = this.#waiters.splice(i, 1);
        w!.resolve(frame);
      } else {
        this.#unread.push(frame);
      }
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next unread frame of `type` (or matching the predicate), within `timeoutMs`. */
  next(match: string | ((f: Frame) => boolean) = () => true, timeoutMs = 5000): Promise<Frame> {
    const pred = typeof match === 'string' ? (f: Frame) => f.type === match : match;
    const i = this.#unread.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#unread.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: pred,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got: ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Sends a frame and waits for the reply carrying the same `ref`. */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Frame> {
    const ref = frame['ref'] ?? `r${Math.random().toString(36).slice(2)}`;
    this.send({ ...frame, ref });
    return this.next((f) => f['ref'] === ref, timeoutMs);
  }

  /**
   * A ping answered by its pong: every frame the server queued for this connection before it
   * read the ping has arrived once this resolves (one connection's frames keep their order).
   */
  async barrier(timeoutMs = 10_000): Promise<void> {
    const pong = await this.request({ type: 'ping' }, timeoutMs);
    if (pong.type !== 'pong') throw new Error(`ping answered with ${JSON.stringify(pong)}`);
  }

  unread(): Frame[] {
    return [...this.#unread];
  }

  close(): void {
    this.ws.close();
  }
}

export class UpgradeRefused extends Error {
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/** Connects, authenticates by first frame, and returns the client with its auth_success. */
export async function connect(url: string, token: string, extra: Record<string, unknown> = {}): Promise<{ client: TestClient; hello: Frame }> {
  const client = new TestClient(url);
  await client.opened;
  client.send({ type: 'auth', token, ...extra });
  const hello = await client.next((f) => f.type === 'auth_success' || f.type === 'auth_error');
  return { client, hello };
}
