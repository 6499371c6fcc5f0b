import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

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
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
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
