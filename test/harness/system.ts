import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Installs what the integration suites need from Debian's packages when it is missing and
 * we are root (CI and the dev machines are). Without root, the suites that need a missing
 * tool say so and fail; nothing is faked.
 */
export interface AptNeed {
  /** True when already present. */
  present(): boolean;
  packages: string[];
}

let updated = false;

export function ensureApt(needs: AptNeed[]): void {
  const missing = needs.filter((n) => !n.present());
  if (missing.length === 0) return;
  const packages = missing.flatMap((n) => n.packages);
  if (process.getuid?.() !== 0) {
    throw new Error(`missing system packages (${packages.join(' ')}); install them with apt-get, or run the tests as root`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!updated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    updated = true;
  }
  // Debian's nginx, haproxy and redis packages start their system services on install; the
  // suites start their own on free ports, so forbid that while installing (policy-rc.d 101).
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const still = missing.filter((n) => !n.present());
  if (still.length > 0) throw new Error(`apt-get install did not provide ${still.flatMap((n) => n.packages).join(' ')}`);
}

/** Debian's own python3 (not a pyenv shim) with its python3-websockets. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export const pythonWebsockets: AptNeed = {
  packages: ['python3', 'python3-websockets'],
  present: () => existsSync(DEBIAN_PYTHON) && spawnSync(DEBIAN_PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0,
};

export const redisServer: AptNeed = {
  packages: ['redis-server', 'redis-tools'],
  present: () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0,
};

/** Debian's binaries live in /usr/sbin, which a non-root PATH may lack. */
function sbin(name: string): string {
  return existsSync(`/usr/sbin/${name}`) ? `/usr/sbin/${name}` : name;
}

export const NGINX = sbin('nginx');
export const HAPROXY = sbin('haproxy');

export const nginx: AptNeed = {
  packages: ['nginx'],
  present: () => spawnSync(NGINX, ['-v'], { stdio: 'ignore' }).status === 0,
};

export const haproxy: AptNeed = {
  packages: ['haproxy'],
  present: () => spawnSync(HAPROXY, ['-v'], { stdio: 'ignore' }).status === 0,
};

/** For the test-only self-signed certificates behind the proxies' TLS listeners. */
export const openssl: AptNeed = {
  packages: ['openssl'],
  present: () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0,
};

/** Debian's Chromium, driven by playwright-core in the browser test (no browser download). */
export const CHROMIUM = '/usr/bin/chromium';

export const chromium: AptNeed = {
  packages: ['chromium'],
  present: () => existsSync(CHROMIUM) && spawnSync(CHROMIUM, ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
};

/** For checking the shipped systemd unit (`systemd-analyze verify` and `security`). */
export const systemdAnalyze: AptNeed = {
  packages: ['systemd'],
  present: () => spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0,
};
