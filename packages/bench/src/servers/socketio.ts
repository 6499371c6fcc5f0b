/**
 * `socketio_redis`: what users would pick instead. Socket.IO 4 on Node's http server (its
 * default `ws` transport, WebSocket only), with a JWT checked (jose, HS256) in the connect
 * middleware like Switchyard's auth. A client joins a room with `subscribe` (answered
 * `subscribed`) and publishes with `publish(channel, data)`, broadcast with io.to(channel).
 * With REDIS_URL, @socket.io/redis-adapter carries broadcasts between nodes.
 *
 * GET /metrics: event-loop delay p99 and heap (see metrics.ts).
 *
 * Env: PORT (required), JWT_SECRET (required), REDIS_URL (optional). Prints "listening <port>".
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { metricsText } from './metrics.js';

const port = Number(process.env['PORT']);
const secret = new TextEncoder().encode(process.env['JWT_SECRET'] ?? '');
const redisUrl = process.env['REDIS_URL'];

// Socket.IO answers /socket.io/ itself and hands every other request to this handler.
const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(metricsText());
  } else {
    res.writeHead(404).end();
  }
});
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
  pingInterval: 25_000,
  pingTimeout: 20_000,
});
if (redisUrl !== undefined) {
  const pubClient = new Redis(redisUrl);
  const subClient = pubClient.duplicate();
  io.adapter(createAdapter(pubClient, subClient));
}

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: unknown }).token;
  if (typeof token !== 'string') return next(new Error('token required'));
  jwtVerify(token, secret, { algorithms: ['HS256'] }).then(
    (result) => {
      socket.data.user = result.payload.sub;
      next();
    },
    () => next(new Error('bad token')),
  );
});

io.on('connection', (socket) => {
  socket.on('subscribe', (channel: unknown) => {
    if (typeof channel !== 'string') return;
    void socket.join(channel);
    socket.emit('subscribed', channel);
  });
  socket.on('publish', (channel: unknown, data: unknown) => {
    if (typeof channel !== 'string') return;
    io.to(channel).emit('event', data);
  });
});

http.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
