import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU lists (taskset syntax) for the servers (with their Redis) and for the load clients. */
export interface Pinning {
  server: string;
  load: string;
}

let current: Pinning | null = null;

/** The CPUs this process may run on (its affinity, not the machine's count: containers narrow it). */
export function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m === null) return [];
    const cpus: number[] = [];
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return [];
  }
}

/**
 * Servers on the first half of the allowed CPUs, load clients (and the bench itself) on the
 * rest, so that neither steals the other's cycles and CPU-seconds are the server's own.
 * Null, with the reason, where that cannot be done (one CPU, no taskset, or turned off).
 */
export function planPinning(enabled: boolean): { pinning: Pinning | null; why: string } {
  if (!enabled) return { pinning: null, why: 'pinning turned off (--no-pin)' };
  const cpus = allowedCpus();
  if (cpus.length < 2) return { pinning: null, why: `not pinned: ${cpus.length} CPU allowed` };
  if (spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status !== 0) return { pinning: null, why: 'not pinned: taskset is not installed' };
  const half = Math.floor(cpus.length / 2);
  const pinning = { server: cpus.slice(0, half).join(','), load: cpus.slice(half).join(',') };
  return { pinning, why: `pinned with taskset: servers and Redis on CPU ${pinning.server}, load clients and the bench on CPU ${pinning.load}` };
}

/** Pins (or unpins, with null) every process started from now on; returns the previous setting. */
export function setPinning(p: Pinning | null): Pinning | null {
  const before = current;
  current = p;
  return before;
}

/** The command line that runs `cmd args` on the role's CPUs (taskset execs it: the pid stays the command's). */
export function pinned(role: keyof Pinning, cmd: string, args: string[]): [string, string[]] {
  if (current === null) return [cmd, args];
  return ['taskset', ['-c', current[role], cmd, ...args]];
}

/** Moves this process (all its threads) onto `cpus`; returns the list it had, to put back. */
export function pinSelf(cpus: string): string | null {
  const before = allowedCpus().join(',');
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  return r.status === 0 ? before : null;
}
