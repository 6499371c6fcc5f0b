/**
 * Renders the proxy templates (nginx/nginx.conf.template, haproxy/haproxy.cfg.template) into
 * working configurations: fills in every `{{NAME}}` placeholder and keeps or drops the
 * `{{#tls}} ... {{/tls}}` blocks. The tests render the same templates with real ports
 * (test/harness/proxy.ts), so what ships is what is tested.
 *
 *   pnpm render-proxy nginx --upstream 10.0.0.11:8765 --upstream 10.0.0.12:8765 --upstream 10.0.0.13:8765
 *   pnpm render-proxy haproxy --upstream edge-a=10.0.0.11:8765 ... --tls --set TLS_PEM=/etc/haproxy/site.pem
 *   pnpm render-proxy --write     # regenerates deploy/nginx.conf (the Compose file's proxy)
 *   pnpm render-proxy --check     # exit 1 when deploy/nginx.conf is stale
 *
 * A placeholder left without a value, or a value given for no placeholder, is an error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export type ProxyKind = 'nginx' | 'haproxy';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

export const TEMPLATES: Record<ProxyKind, string> = {
  nginx: 'nginx/nginx.conf.template',
  haproxy: 'haproxy/haproxy.cfg.template',
};

/** Production defaults of every placeholder but UPSTREAM_SERVERS (built from the upstreams). */
export const DEFAULTS: Record<ProxyKind, Record<string, string>> = {
  nginx: {
    LISTEN: '80',
    TLS_LISTEN: '443',
    TLS_CERT: '/etc/ssl/switchyard/tls.crt',
    TLS_KEY: '/etc/ssl/switchyard/tls.key',
    RUN_DIR: '/run',
    LOG_DIR: '/var/log/nginx',
    TEMP_DIR: '/var/lib/nginx',
    ERROR_LOG_LEVEL: 'warn',
    WORKER_CONNECTIONS: '65536',
    WORKER_RLIMIT_NOFILE: '131072',
    // Concurrent connections and request rate per client address. Generous: a whole office
    // behind one NAT address shares them.
    MAX_CONN_PER_IP: '200',
    REQ_RATE_PER_IP: '20r/s',
    REQ_BURST_PER_IP: '100',
    TUNNEL_TIMEOUT: '120s',
    // Passive health check, per upstream server line.
    MAX_FAILS: '1',
    FAIL_TIMEOUT: '10s',
  },
  haproxy: {
    LISTEN: ':80',
    TLS_LISTEN: ':443',
    TLS_PEM: '/etc/haproxy/certs/switchyard.pem',
    RUN_DIR: '/run/haproxy',
    LOG_LEVEL: 'info',
    MAXCONN: '200000',
    SERVER_MAXCONN: '100000',
    HARD_STOP_AFTER: '30m',
    MAX_CONN_PER_IP: '200',
    // Requests (WebSocket upgrades included) per client address per 10 s.
    MAX_REQ_PER_IP_10S: '400',
    TUNNEL_TIMEOUT: '120s',
    CHECK_INTER: '2s',
    CHECK_FASTINTER: '250ms',
    CHECK_DOWNINTER: '1s',
  },
};

export interface Upstream {
  host: string;
  port: number;
  /** HAProxy server name (default edge1, edge2, ...). */
  name?: string;
}

export interface RenderOptions {
  upstreams: Upstream[];
  /** Keep the {{#tls}} blocks. */
  tls?: boolean;
  /** Placeholder values over the defaults. */
  values?: Record<string, string>;
}

export class TemplateError extends Error {}

const PLACEHOLDER = /\{\{([A-Z0-9_]+)\}\}/g;
const SECTION = /^\s*\{\{([#/])([a-z0-9_]+)\}\}\s*$/;

/**
 * Fills `{{NAME}}` placeholders and keeps (`sections[name]` true) or drops `{{#name}}` …
 * `{{/name}}` blocks, each marker alone on its line. A placeholder alone on its line may take
 * a multi-line value; every line gets the placeholder's indentation.
 */
export function renderTemplate(text: string, values: Record<string, string>, sections: Record<string, boolean> = {}): string {
  const out: string[] = [];
  const open: { name: string; keep: boolean }[] = [];
  const used = new Set<string>();
  for (const [i, line] of text.split('\n').entries()) {
    const marker = SECTION.exec(line);
    if (marker !== null) {
      const [, kind, name] = marker as unknown as [string, '#' | '/', string];
      if (kind === '#') {
        if (!(name in sections)) throw new TemplateError(`line ${i + 1}: unknown section {{#${name}}}`);
        open.push({ name, keep: sections[name] === true });
      } else {
        const top = open.pop();
        if (top?.name !== name) throw new TemplateError(`line ${i + 1}: {{/${name}}} closes ${top ? `{{#${top.name}}}` : 'nothing'}`);
      }
      continue;
    }
    if (!open.every((s) => s.keep)) continue;
    const alone = /^(\s*)\{\{([A-Z0-9_]+)\}\}\s*$/.exec(line);
    if (alone !== null) {
      const [, indent, name] = alone as unknown as [string, string, string];
      const value = values[name];
      if (value === undefined) throw new TemplateError(`line ${i + 1}: no value for {{${name}}}`);
      used.add(name);
      for (const v of value.split('\n')) out.push(v === '' ? '' : `${indent}${v}`);
      continue;
    }
    out.push(
      line.replace(PLACEHOLDER, (_, name: string) => {
        const value = values[name];
        if (value === undefined) throw new TemplateError(`line ${i + 1}: no value for {{${name}}}`);
        if (value.includes('\n')) throw new TemplateError(`line ${i + 1}: {{${name}}} takes one line`);
        used.add(name);
        return value;
      }),
    );
  }
  if (open.length > 0) throw new TemplateError(`{{#${open[open.length - 1]!.name}}} is never closed`);
  const rendered = out.join('\n');
  return rendered.endsWith('\n') ? rendered : `${rendered}\n`;
}

/** Every placeholder a template uses (kept or dropped sections alike). */
export function placeholdersOf(text: string): Set<string> {
  return new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!));
}

function address(u: Upstream): string {
  return u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

export function upstreamLines(kind: ProxyKind, upstreams: Upstream[], values: Record<string, string>): string {
  if (upstreams.length === 0) throw new TemplateError('at least one upstream is needed');
  return upstreams
    .map((u, i) =>
      kind === 'nginx'
        ? `server ${address(u)} max_fails=${values['MAX_FAILS']} fail_timeout=${values['FAIL_TIMEOUT']};`
        : `server ${u.name ?? `edge${i + 1}`} ${address(u)}`,
    )
    .join('\n');
}

export function readTemplate(kind: ProxyKind): string {
  return readFileSync(`${ROOT}${TEMPLATES[kind]}`, 'utf8');
}

export function renderProxyConfig(kind: ProxyKind, options: RenderOptions, template = readTemplate(kind)): string {
  const known = placeholdersOf(template);
  for (const key of Object.keys(options.values ?? {})) {
    if (!known.has(key) && !(key in DEFAULTS[kind])) throw new TemplateError(`${TEMPLATES[kind]} has no placeholder {{${key}}}`);
  }
  const values: Record<string, string> = { ...DEFAULTS[kind], ...options.values };
  values['UPSTREAM_SERVERS'] = upstreamLines(kind, options.upstreams, values);
  return renderTemplate(template, values, { tls: options.tls === true });
}

/** The nginx in deploy/docker-compose.yml: two edges by their service names, in the official image. */
export const COMPOSE_NGINX: RenderOptions = {
  upstreams: [
    { host: 'edge-1', port: 8765 },
    { host: 'edge-2', port: 8765 },
  ],
  tls: false,
  values: { LISTEN: '8080', RUN_DIR: '/var/run', TEMP_DIR: '/var/cache/nginx', WORKER_CONNECTIONS: '16384', WORKER_RLIMIT_NOFILE: '65536' },
};
export const COMPOSE_NGINX_PATH = 'deploy/nginx.conf';

export function composeNginxConfig(): string {
  return `# Generated from ${TEMPLATES.nginx} by \`pnpm render-proxy --write\`; edit the template, not this file.\n${renderProxyConfig('nginx', COMPOSE_NGINX)}`;
}

function parseUpstream(arg: string): Upstream {
  const [name, addr] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [undefined, arg];
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr);
  if (m === null) throw new TemplateError(`--upstream ${arg}: expected [NAME=]HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]), ...(name !== undefined && { name }) };
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      upstream: { type: 'string', multiple: true },
      set: { type: 'string', multiple: true },
      tls: { type: 'boolean' },
      write: { type: 'boolean' },
      check: { type: 'boolean' },
    },
  });
  if (values.write || values.check) {
    const path = `${ROOT}${COMPOSE_NGINX_PATH}`;
    const want = composeNginxConfig();
    if (values.write) {
      writeFileSync(path, want);
      process.stdout.write(`updated ${COMPOSE_NGINX_PATH}\n`);
      return 0;
    }
    if (readFileSync(path, 'utf8') !== want) {
      process.stderr.write(`${COMPOSE_NGINX_PATH} is stale: run pnpm render-proxy --write\n`);
      return 1;
    }
    return 0;
  }
  const kind = positionals[0];
  if (kind !== 'nginx' && kind !== 'haproxy') {
    process.stderr.write('usage: render-proxy nginx|haproxy --upstream [NAME=]HOST:PORT ... [--tls] [--set KEY=VALUE ...]\n');
    return 64;
  }
  const sets: Record<string, string> = {};
  for (const s of values.set ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw new TemplateError(`--set ${s}: expected KEY=VALUE`);
    sets[s.slice(0, i)] = s.slice(i + 1);
  }
  process.stdout.write(
    `${renderProxyConfig(kind, { upstreams: (values.upstream ?? []).map(parseUpstream), tls: values.tls === true, values: sets })}`,
  );
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`render-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
