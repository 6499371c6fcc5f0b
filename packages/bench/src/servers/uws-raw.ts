/**
 * `uws_raw`: the ceiling. A minimal uWebSockets.js app (the same aliased package the edge
 * uses) that subscribes each socket to the channel in its `?ch=` and passes every message
 * a publisher (`?pub=1`) sends to `app.publish`, verbatim. No auth, no seq, no history.
 * With REDIS_URL it is the minimal cluster: publishes go through Redis PUBLISH and every
 * node relays what it receives to its local subscribers.
 *
 * GET /metrics: event-loop delay p99 and heap (see metrics.ts).
 *
 * Env: PORT (required), REDIS_URL (optional). Prints "listening <port>" when ready.
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type * as Uws from 'uWebSockets.js';
import { metricsText } from './metrics.js';

interface Data {
  ch: string;
  pub: boolean;
}

const require = createRequire(import.meta.url);
const uws = require('uWebSockets.js') as typeof Uws;
if (!/\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(uws.App))) {
  process.stderr.write('uws_raw: uWebSockets.js fell back to its JavaScript shim; refusing to run\n');
  process.exit(1);
}
const port = Number(process.env['PORT']);
const redisUrl = process.env['REDIS_URL'];
const app = uws.App();
const pub = redisUrl === undefined ? undefined : new Redis(redisUrl);
const sub = redisUrl === undefined ? undefined : new Redis(redisUrl);
const relayed = new Set<string>();
sub?.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  app.publish(channel.toString(), message, false, false);
});

app.ws<Data>('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    const q = new URLSearchParams(req.getQuery() ?? '');
    res.upgrade<Data>(
      { ch: q.get('ch') ?? '', pub: q.get('pub') === '1' },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    const { ch, pub: isPublisher } = ws.getUserData();
    if (ch === '' || isPublisher) return;
    ws.subscribe(ch);
    if (sub !== undefined && !relayed.has(ch)) {
      relayed.add(ch);
      void sub.subscribe(ch);
    }
  },
  message: (ws, message) => {
    const ch = ws.getUserData().ch;
    if (pub !== undefined) void pub.publish(ch, Buffer.from(message));
    else app.publish(ch, message, false, false);
  },
});

app.get('/metrics', (res) => {
  res.writeHeader('content-type', 'text/plain').end(metricsText());
});

app.listen('127.0.0.1', port, (socket) => {
  if (socket === false) {
    process.stderr.write(`uws_raw: cannot listen on ${port}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
