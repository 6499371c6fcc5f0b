/**
 * What an SSE client costs next to a WebSocket client, measured in one run against real edge
 * processes: memory per idle client (the edge's RSS growth over N idle clients, a fresh edge
 * per kind), and deliveries per CPU-second of the edge (K subscribers of one channel, M
 * events published, the edge's user+system CPU time from /proc until every client had every
 * event). Prints a Markdown table for BENCHMARKS.md.
 *
 *   node --import tsx scripts/bench-sse.ts [--idle 2000] [--subscribers 500] [--events 200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const SECRET = 'bench-secret-that-is-long-enough-for-hs256!!';
const KEY = 'bk-bench-sse';
const CLI = new URL('../packages/cli/src/main.ts', import.meta.url).pathname;

const { values } = parseArgs({ options: { idle: { type: 'string', default: '2000' }, subscribers: { type: 'string', default: '500' }, events: { type: 'string', default: '200' } } });
const IDLE = Number(values.idle);
const SUBSCRIBERS = Number(values.subscribers);
const EVENTS = Number(values.events);

type Kind = 'websocket' | 'sse';
interface Edge {
  proc: ChildProcess;
  port: number;
}

async function startEdge(): Promise<Edge> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'edge'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', JWT_SECRET: SECRET, BROADCAST_API_KEY: KEY, LOG_LEVEL: 'info', MAX_CONNECTIONS_PER_USER: '1000000', MAX_TOTAL_CONNECTIONS: '1000000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('edge did not start')), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"port":(\d+).*edge listening/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  proc.stdout!.resume();
  return { proc, port };
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function token(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ channels: ['bench:*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(SECRET));
}

/** A client that counts the events it receives; `ready` once subscribed. */
interface Client {
  ready: Promise<void>;
  events: () => number;
  close(): void;
}

function wsClient(port: number, jwt: string, channel: string): Client {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${jwt}`);
  let events = 0;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', channel })));
  ws.on('message', (data: Buffer) => {
    const text = data.toString();
    if (text.startsWith('{"type":"event"')) events++;
    else if (text.startsWith('{"type":"subscription_result"')) onReady();
  });
  return { ready, events: () => events, close: () => ws.terminate() };
}

function sseClient(port: number, jwt: string, channel: string): Client {
  const socket: Socket = netConnect(port, '127.0.0.1');
  let events = 0;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  let tail = '';
  socket.on('connect', () => socket.write(`GET /sse?channel=${channel}&token=${jwt} HTTP/1.1\r\nHost: bench\r\n\r\n`));
  socket.on('data', (d: Buffer) => {
    const text = tail + d.toString('latin1');
    let from = 0;
    for (;;) {
      const i = text.indexOf('data: {"type":"', from);
      if (i < 0) break;
      if (text.startsWith('event"', i + 15)) events++;
      else if (text.startsWith('subscription_result"', i + 15)) onReady();
      from = i + 1;
    }
    tail = text.slice(-40);
  });
  socket.on('error', () => undefined);
  return { ready, events: () => events, close: () => socket.destroy() };
}

async function openClients(kind: Kind, port: number, n: number, channelOf: (i: number) => string): Promise<Client[]> {
  const clients: Client[] = [];
  const BATCH = 100;
  for (let i = 0; i < n; i += BATCH) {
    const batch: Client[] = [];
    for (let k = i; k < Math.min(n, i + BATCH); k++) {
      const jwt = await token(`u${k % 50}`);
      batch.push(kind === 'websocket' ? wsClient(port, jwt, channelOf(k)) : sseClient(port, jwt, channelOf(k)));
    }
    await Promise.all(batch.map((c) => c.ready));
    clients.push(...batch);
  }
  return clients;
}

async function publish(port: number, channel: string, i: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'tick', data: { i, pad: 'x'.repeat(100) } }),
  });
  if (res.status !== 202) throw new Error(`broadcast: ${res.status}`);
}

async function measure(kind: Kind): Promise<{ perClientBytes: number; deliveriesPerCpuS: number }> {
  const edge = await startEdge();
  const pid = edge.proc.pid!;
  try {
    // Memory: idle clients spread over 10 channels.
    const warm = await openClients(kind, edge.port, 20, (i) => `bench:idle${i % 10}`);
    await sleep(2000);
    const before = rssBytes(pid);
    const idle = await openClients(kind, edge.port, IDLE, (i) => `bench:idle${i % 10}`);
    await sleep(3000);
    const after = rssBytes(pid);
    for (const c of [...warm, ...idle]) c.close();
    await sleep(2000);

    // Throughput: SUBSCRIBERS on one channel, EVENTS published one after another.
    const subs = await openClients(kind, edge.port, SUBSCRIBERS, () => 'bench:hot');
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    for (let i = 0; i < EVENTS; i++) await publish(edge.port, 'bench:hot', i);
    const deadline = Date.now() + 120_000;
    while (subs.some((c) => c.events() < EVENTS) && Date.now() < deadline) await sleep(20);
    const cpu = cpuSeconds(pid) - cpu0;
    const delivered = subs.reduce((n, c) => n + c.events(), 0);
    if (delivered !== SUBSCRIBERS * EVENTS) throw new Error(`${kind}: ${delivered} of ${SUBSCRIBERS * EVENTS} deliveries arrived`);
    process.stderr.write(`${kind}: rss ${before} → ${after}; ${delivered} deliveries in ${Date.now() - t0} ms, ${cpu.toFixed(2)} CPU-s\n`);
    for (const c of subs) c.close();
    return { perClientBytes: (after - before) / IDLE, deliveriesPerCpuS: delivered / cpu };
  } finally {
    edge.proc.kill('SIGKILL');
  }
}

const ws = await measure('websocket');
const sse = await measure('sse');
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const rate = (r: number) => `${Math.round(r).toLocaleString('en-US')}`;
process.stdout.write(
  [
    `| client | memory per idle client (${IDLE} idle) | deliveries per edge CPU-second (${SUBSCRIBERS} subscribers × ${EVENTS} events) |`,
    '|---|---|---|',
    `| WebSocket | ${kib(ws.perClientBytes)} | ${rate(ws.deliveriesPerCpuS)} |`,
    `| SSE | ${kib(sse.perClientBytes)} | ${rate(sse.deliveriesPerCpuS)} |`,
    '',
  ].join('\n'),
);
process.exit(0);
