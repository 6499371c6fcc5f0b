/**
 * deploy/ without a Docker engine: the Compose files against the Compose Specification's JSON
 * schema (as shipped by the `dclint` package, checked with ajv, offline) and against each
 * other; the Dockerfile's shape (parsed with dockerfile-ast), then its build and run steps
 * replayed here — the build and pack from the lockfile, the npm install of the tarballs, the edge started with the
 * image's ENTRYPOINT and CMD, and the image's HEALTHCHECK command run against it; the
 * systemd unit with `systemd-analyze verify` and `security`; the proxy templates' renderer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { edgeSettings } from '../../packages/edge/src/config.js';
import { runnerSettings } from '../../packages/runner/src/config.js';
import {
  COMPOSE_NGINX,
  COMPOSE_NGINX_PATH,
  DEFAULTS,
  composeNginxConfig,
  placeholdersOf,
  readTemplate,
  renderProxyConfig,
  renderTemplate,
  TemplateError,
} from '../../scripts/render-proxy-config.js';
import { ROOT, TEST_SECRET } from '../harness/edge.js';
import { childEnv } from '../harness/env.js';
import { waitFor } from '../harness/ports.js';
import { ensureApt, systemdAnalyze } from '../harness/system.js';

type Obj = Record<string, any>;
const require = createRequire(import.meta.url);
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const settingNames = new Set([...Object.values(edgeSettings), ...Object.values(runnerSettings)].map((s) => s.env));

function composeSchemaValidator() {
  const schemaPath = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Obj;
  // It declares draft-07 by an https URI without the fragment; ajv knows draft-07 as
  // http://json-schema.org/draft-07/schema#, its built-in meta-schema.
  expect(schema['$schema']).toMatch(/draft-07/);
  schema['$schema'] = 'http://json-schema.org/draft-07/schema#';
  const ajv = new Ajv({ allErrors: true, strict: false });
  return ajv.compile(schema);
}

/** Compose files use YAML anchors and `<<` merge keys. */
const loadCompose = (rel: string) => parseYaml(read(rel), { merge: true }) as Obj;

/** Go-style durations as Compose writes them: 40s, 1m30s. */
function seconds(duration: string): number {
  let total = 0;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let matched = '';
  for (const m of duration.matchAll(re)) {
    total += Number(m[1]) * units[m[2]!]!;
    matched += m[0];
  }
  expect(matched, `duration ${duration}`).toBe(duration);
  return total;
}

function envFile(rel: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read(rel).split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    expect(m, `${rel}: "${line}" is not KEY=VALUE`).not.toBeNull();
    out.set(m![1]!, m![2]!);
  }
  return out;
}

describe('deploy/docker-compose.yml', () => {
  const validate = composeSchemaValidator();

  it('validates against the Compose Specification schema, with the GPU override', () => {
    for (const rel of ['deploy/docker-compose.yml', 'deploy/docker-compose.gpu.yml']) {
      const ok = validate(loadCompose(rel));
      expect(validate.errors ?? [], rel).toEqual([]);
      expect(ok).toBe(true);
    }
    // The check is real: a misspelt key and a bad depends_on condition are refused.
    const broken = loadCompose('deploy/docker-compose.yml');
    broken['services']['edge-1']['helthcheck'] = broken['services']['edge-1']['healthcheck'];
    broken['services']['nginx']['depends_on']['edge-1']['condition'] = 'service_ready';
    expect(validate(broken)).toBe(false);
    expect(JSON.stringify(validate.errors)).toMatch(/helthcheck|additionalProperties/);
  });

  it('runs Redis, Kafka in KRaft mode, two edges, a runner and nginx, each with a health check it waits on', () => {
    const compose = loadCompose('deploy/docker-compose.yml');
    const services = compose['services'] as Record<string, Obj>;
    expect(Object.keys(services).sort()).toEqual(['edge-1', 'edge-2', 'kafka', 'nginx', 'redis', 'runner']);
    for (const [name, svc] of Object.entries(services)) {
      expect(svc['healthcheck']?.['test'], `${name} has a health check`).toBeDefined();
      for (const [dep, cond] of Object.entries((svc['depends_on'] ?? {}) as Record<string, Obj>)) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        expect(cond['condition'], `${name} → ${dep}`).toBe('service_healthy');
      }
    }
    // Kafka without ZooKeeper: one node that is both broker and controller.
    const kafka = services['kafka']!;
    expect(kafka['image']).toMatch(/^apache\/kafka:/);
    expect(kafka['environment']['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    expect(kafka['environment']['KAFKA_CONTROLLER_QUORUM_VOTERS']).toMatch(/^1@kafka:\d+$/);
    expect(JSON.stringify(compose)).not.toMatch(/zookeeper/i);

    const drainS = Number(envFile('deploy/.env.example').get('DRAIN_TIMEOUT_MS')) / 1000;
    const workerIds = new Set<string>();
    for (const name of ['edge-1', 'edge-2']) {
      const edge = services[name]!;
      expect(edge['command']).toEqual(['edge']);
      expect(edge['build']).toMatchObject({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(edge['environment']['REDIS_URL']).toBe('redis://redis:6379');
      expect(edge['environment']['KAFKA_SERVERS']).toBe('kafka:9092');
      expect(edge['depends_on']).toMatchObject({ redis: {}, kafka: {} });
      expect(seconds(edge['stop_grace_period'])).toBeGreaterThan(drainS);
      expect(edge['healthcheck']['test'].join(' ')).toContain('8765/ready');
      workerIds.add(edge['environment']['WORKER_ID']);
    }
    expect(workerIds.size).toBe(2);
    const runner = services['runner']!;
    expect(runner['command']).toEqual(['runner']);
    expect(runner['environment']).toMatchObject({ KAFKA_SERVERS: 'kafka:9092', REDIS_URL: 'redis://redis:6379' });
    // The default pipeline is the demo one, which the image holds (the build context keeps examples/).
    const pipeline = /^\$\{PIPELINE_EXECUTABLE:-(.+)\}$/.exec(runner['environment']['PIPELINE_EXECUTABLE'])![1]!;
    expect(pipeline).toMatch(/^\/app\//);
    expect(existsSync(join(ROOT, pipeline.slice('/app/'.length))), pipeline).toBe(true);
    expect(read('deploy/Dockerfile.dockerignore').split('\n')).not.toContain('examples');
    expect(envFile('deploy/.env.example').get('PIPELINE_EXECUTABLE')).toBe(pipeline);
    const gpu = loadCompose('deploy/docker-compose.gpu.yml');
    expect(gpu['services']['runner']['deploy']['resources']['reservations']['devices'][0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
  });

  it('puts nginx, configured from nginx/nginx.conf.template, in front of exactly the two edges', () => {
    const services = loadCompose('deploy/docker-compose.yml')['services'] as Record<string, Obj>;
    const nginx = services['nginx']!;
    expect(nginx['volumes']).toContain(`./nginx.conf:/etc/nginx/nginx.conf:ro`);
    // deploy/nginx.conf is the template rendered for Compose (`pnpm render-proxy --write`).
    expect(read(COMPOSE_NGINX_PATH)).toBe(composeNginxConfig());
    const upstreams = COMPOSE_NGINX.upstreams.map((u) => `${u.host}:${u.port}`).sort();
    expect(upstreams).toEqual(['edge-1:8765', 'edge-2:8765']);
    for (const u of upstreams) expect(read(COMPOSE_NGINX_PATH)).toContain(`server ${u} `);
    const [, container] = /:(\d+)$/.exec(nginx['ports'][0])!;
    expect(read(COMPOSE_NGINX_PATH)).toMatch(new RegExp(`listen ${container} `));
    expect(nginx['healthcheck']['test'].join(' ')).toContain(`${container}/nginx-health`);
  });

  it('.env.example holds only real settings and the Compose variables the file uses', () => {
    const env = envFile('deploy/.env.example');
    const text = read('deploy/docker-compose.yml') + read('deploy/docker-compose.gpu.yml');
    const used = new Map([...text.matchAll(/\$\{([A-Z0-9_]+)(:?-[^}]*)?\}/g)].map((m) => [m[1]!, m[2] !== undefined] as const));
    for (const [name, hasDefault] of used) {
      if (!hasDefault) expect(env.has(name), `\${${name}} has no default and is not in .env.example`).toBe(true);
    }
    for (const key of env.keys()) expect(settingNames.has(key) || used.has(key), `.env.example: ${key} is neither a setting nor used by Compose`).toBe(true);
    expect(env.has('JWT_SECRET')).toBe(true);
    // A real secret never ships: the placeholder is empty, and the edge refuses to start without one.
    expect(env.get('JWT_SECRET')).toBe('');
  });
});

describe('deploy/Dockerfile', () => {
  const text = read('deploy/Dockerfile');
  const dockerfile = DockerfileParser.parse(text);
  const instructions = dockerfile.getInstructions();
  const stages = dockerfile.getFROMs();
  const lastFrom = stages[stages.length - 1]!;
  const finalStage = instructions.filter((i) => i.getRange().start.line > lastFrom.getRange().start.line);
  const of = (list: Instruction[], keyword: string) => list.filter((i) => i.getKeyword() === keyword);
  /** The JSON array of an exec-form instruction (CMD, ENTRYPOINT, HEALTHCHECK CMD). */
  const execForm = (i: Instruction): string[] => {
    const raw = i.getRawArgumentsContent()!.replace(/\\\n/g, ' ');
    const json = raw.slice(raw.indexOf('['));
    return JSON.parse(json) as string[];
  };

  it('builds in stages from node:20-bookworm-slim and runs as a non-root user with a HEALTHCHECK', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const from of stages) expect(from.getImage()).toBe('node:20-bookworm-slim');
    const stageNames = stages.map((f) => f.getBuildStage()).filter(Boolean);
    for (const copy of of(instructions, 'COPY')) {
      const fromFlag = copy.getArguments().find((a) => a.getValue().startsWith('--from='));
      if (fromFlag) expect(stageNames).toContain(fromFlag.getValue().slice('--from='.length));
    }
    const users = of(finalStage, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1]!.getArgumentsContent()!.split(':')[0];
    expect(['root', '0']).not.toContain(user);
    expect(of(finalStage, 'HEALTHCHECK')).toHaveLength(1);
    expect(of(finalStage, 'EXPOSE').map((e) => e.getArgumentsContent()).join(' ')).toContain('8765');
    // Built and packed from the lockfile in the build stage; installed from the tarballs,
    // production dependencies only, in the final one; run as the installed `switchyard`.
    const runs = of(instructions, 'RUN').map((r) => r.getArgumentsContent()!);
    const build = runs.find((r) => r.includes('pnpm install'));
    expect(build).toMatch(/--frozen-lockfile/);
    expect(build).toMatch(/scripts\/pack\.mjs/);
    const install = of(finalStage, 'RUN').map((r) => r.getArgumentsContent()!).find((r) => r.includes('npm install --global'));
    expect(install).toMatch(/--omit=dev/);
    expect(install).toMatch(/\.tgz/);
    expect(execForm(of(finalStage, 'CMD')[0]!)).toEqual(['edge']);
    expect(execForm(of(finalStage, 'ENTRYPOINT')[0]!)).toEqual(['/usr/bin/tini', '--', 'switchyard']);
    for (const i of finalStage) expect(i.getRawArgumentsContent() ?? '', 'the image runs no tsx').not.toMatch(/\btsx\b/);
    const ignore = read('deploy/Dockerfile.dockerignore');
    for (const p of ['**/node_modules', '.git', '.env']) expect(ignore.split('\n')).toContain(p);
  });

  describe('replayed without Docker', () => {
    const work = mkdtempSync(join(tmpdir(), 'sy-image-'));
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it('builds and packs from the lockfile, installs the tarballs (production only), starts the edge with ENTRYPOINT + CMD, and passes its HEALTHCHECK', async () => {
      // The build context, filtered by Dockerfile.dockerignore.
      const patterns = read('deploy/Dockerfile.dockerignore')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'));
      expect(patterns.some((p) => p.startsWith('!'))).toBe(false);
      const toRegex = (p: string) =>
        new RegExp(`^${p.split('**/').map((part) => part.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('(?:.*/)?')}$`);
      const regexes = patterns.map(toRegex);
      const copyTree = (rel: string) => {
        for (const name of readdirSync(join(ROOT, rel))) {
          const child = rel === '' ? name : `${rel}/${name}`;
          if (regexes.some((r) => r.test(child))) continue;
          const st = statSync(join(ROOT, child));
          if (st.isDirectory()) {
            mkdirSync(join(work, child), { recursive: true });
            copyTree(child);
          } else if (st.isFile()) copyFileSync(join(ROOT, child), join(work, child));
        }
      };
      copyTree('');
      expect(existsSync(join(work, 'test'))).toBe(false);
      expect(existsSync(join(work, 'pnpm-lock.yaml'))).toBe(true);

      // Build stage: RUN pnpm install --frozen-lockfile --offline && node scripts/pack.mjs /packs
      // (offline: the store is filled by the checkout's install).
      const install = spawnSync('pnpm', ['install', '--frozen-lockfile', '--offline'], { cwd: work, encoding: 'utf8', timeout: 240_000 });
      expect(install.status, `${install.stdout}\n${install.stderr}`).toBe(0);
      const packs = join(work, 'packs');
      const pack = spawnSync(process.execPath, ['scripts/pack.mjs', packs], { cwd: work, encoding: 'utf8', timeout: 300_000 });
      expect(pack.status, `${pack.stdout}\n${pack.stderr}`).toBe(0);
      // Final stage: RUN npm install --global --omit=dev /tmp/packs/*.tgz (into a prefix of our own here).
      const prefix = join(work, 'global');
      const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz')).map((f) => join(packs, f));
      const npmInstall = spawnSync('npm', ['install', '--global', '--prefix', prefix, '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], {
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, npm_config_cache: join(ROOT, '.cache', 'npm') },
      });
      expect(npmInstall.status, `${npmInstall.stdout}\n${npmInstall.stderr}`).toBe(0);
      const installed = join(prefix, 'lib', 'node_modules');
      expect(existsSync(join(installed, '@switchyard', 'cli', 'dist', 'main.js'))).toBe(true);
      expect(existsSync(join(installed, '@switchyard', 'cli', 'src'))).toBe(false);
      expect(existsSync(join(installed, 'tsx'))).toBe(false);
      expect(existsSync(join(installed, '@switchyard', 'cli', 'node_modules', 'typescript'))).toBe(false);

      // ENTRYPOINT (after tini) + CMD, with the image's ENV and a test key.
      const entry = execForm(of(finalStage, 'ENTRYPOINT')[0]!);
      const cmd = execForm(of(finalStage, 'CMD')[0]!);
      const argv = [...entry.slice(entry.indexOf('--') + 1), ...cmd];
      expect(argv[0]).toBe('switchyard');
      const env = childEnv({ PATH: `${join(prefix, 'bin')}:${process.env['PATH']}`, NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', JWT_SECRET: TEST_SECRET, WORKER_ID: 'image-1' });
      const proc = spawn(join(prefix, 'bin', argv[0]!), argv.slice(1), { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
      try {
        const port = await waitFor(() => {
          const m = /"port":(\d+).*"msg":"edge listening"/.exec(out);
          if (proc.exitCode !== null) throw new Error(out);
          return m ? Number(m[1]) : undefined;
        }, 20_000, `the edge from the production install:\n${out}`);
        // HEALTHCHECK CMD, as Docker would run it inside the container.
        const health = execForm(of(finalStage, 'HEALTHCHECK')[0]!);
        expect(health[0]).toBe('node');
        const check = (p: number) => spawnSync(process.execPath, health.slice(1), { env: childEnv({ PORT: String(p) }), encoding: 'utf8', timeout: 10_000 }).status;
        expect(check(port)).toBe(0);
        proc.kill('SIGTERM');
        expect(await exited).toBe(0);
        // And it fails once nothing serves there.
        expect(check(port)).not.toBe(0);
      } finally {
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    }, 900_000);
  });
});

describe('deploy/switchyard-edge.service', () => {
  const unit = read('deploy/switchyard-edge.service');
  const sections = new Map<string, Map<string, string[]>>();
  let current = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = section[1]!;
      sections.set(current, new Map());
      continue;
    }
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    expect(m, `not Key=Value: ${line}`).not.toBeNull();
    const values = sections.get(current)!.get(m![1]!) ?? [];
    sections.get(current)!.set(m![1]!, [...values, m![2]!]);
  }
  const service = (key: string) => sections.get('Service')?.get(key)?.at(-1);

  it('runs `switchyard edge` as a non-root user, stops with SIGTERM and waits longer than the drain', () => {
    expect([...sections.keys()]).toEqual(['Unit', 'Service', 'Install']);
    // The installed `switchyard` (npm install --global of the packed tarballs), compiled JavaScript.
    expect(service('ExecStart')).toMatch(/^\/usr\/bin\/env switchyard edge$/);
    expect(unit).not.toMatch(/tsx/);
    expect(service('User')).toBeDefined();
    expect(service('User')).not.toBe('root');
    expect(service('KillSignal')).toBe('SIGTERM');
    expect(service('Restart')).toMatch(/^(on-failure|always)$/);
    const drainS = (edgeSettings.drainTimeoutMs.default as number) / 1000;
    expect(Number(service('TimeoutStopSec'))).toBeGreaterThan(drainS);
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', RestrictSUIDSGID: 'yes' })) {
      expect(service(key), key).toBe(value);
    }
    expect(service('CapabilityBoundingSet')).toBe('');
    expect(sections.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('passes systemd-analyze verify with no warning, and its security exposure is low', () => {
    // Never skipped: installed from Debian's packages where missing (as root), else a clear failure.
    ensureApt([systemdAnalyze]);
    const dir = mkdtempSync(join(tmpdir(), 'sy-unit-'));
    try {
      const path = join(dir, 'switchyard-edge.service');
      copyFileSync(join(ROOT, 'deploy/switchyard-edge.service'), path);
      const verify = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 30_000 });
      expect(verify.stderr + verify.stdout).toBe('');
      expect(verify.status).toBe(0);
      // Exposure is 0 (locked down) to 10 (unsafe); --threshold is in tenths.
      const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=30', path], { encoding: 'utf8', timeout: 30_000 });
      expect(security.status, security.stdout.split('\n').slice(-3).join('\n')).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('proxy templates', () => {
  it('renders placeholders and sections, and refuses what it cannot fill', () => {
    expect(renderTemplate('a {{X}} b\n  {{#tls}}\n  t {{Y}}\n  {{/tls}}\n  {{LIST}}\n', { X: '1', Y: '2', LIST: 'p;\nq;' }, { tls: true })).toBe('a 1 b\n  t 2\n  p;\n  q;\n');
    expect(renderTemplate('{{#tls}}\nt {{Y}}\n{{/tls}}\nz\n', {}, { tls: false })).toBe('z\n');
    expect(() => renderTemplate('{{X}}\n', {})).toThrow(TemplateError);
    expect(() => renderTemplate('{{#tls}}\n', {}, { tls: true })).toThrow(/never closed/);
    expect(() => renderProxyConfig('nginx', { upstreams: [{ host: 'h', port: 1 }], values: { NO_SUCH: 'x' } })).toThrow(/no placeholder/);
    expect(() => renderProxyConfig('haproxy', { upstreams: [] })).toThrow(/at least one upstream/);
  });

  it('gives every placeholder of each template a production default', () => {
    for (const kind of ['nginx', 'haproxy'] as const) {
      const used = [...placeholdersOf(readTemplate(kind))].filter((p) => p !== 'UPSTREAM_SERVERS');
      for (const p of used) expect(DEFAULTS[kind], `${kind}: {{${p}}}`).toHaveProperty(p);
      const text = renderProxyConfig(kind, { upstreams: [{ host: '10.0.0.1', port: 8765 }, { host: '10.0.0.2', port: 8765 }, { host: '10.0.0.3', port: 8765 }], tls: true });
      expect(text.split('\n').filter((l) => !l.trimStart().startsWith('#') && l.includes('{{'))).toEqual([]);
      // Tunnel timeouts stay above the edge's ping interval and idle timeout.
      const timeout = Number(/(\d+)s/.exec(DEFAULTS[kind]['TUNNEL_TIMEOUT']!)![1]);
      expect(timeout).toBeGreaterThan(edgeSettings.idleTimeoutS.default as number);
      expect(text).toMatch(kind === 'nginx' ? /X-Forwarded-For \$proxy_add_x_forwarded_for/ : /option forwardfor/);
    }
  });
});
