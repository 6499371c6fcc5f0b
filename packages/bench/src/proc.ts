import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

let clkTck: number | undefined;

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, almost always 100). */
export function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process (all its threads), in seconds; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after the closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return 0;
  }
}

export function totalCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

/** Resident set size in bytes (VmRSS); 0 once the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

export function totalRssBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
}

/** Bytes held by the kernel's slab caches, machine-wide (/proc/slabinfo: slabs × pages × page size). */
export function slabBytes(): number | null {
  try {
    let total = 0;
    for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n').slice(2)) {
      const parts = line.trim().split(/\s+/);
      // name active num objsize objperslab pagesperslab : tunables ... : slabdata active_slabs num_slabs shared
      const i = parts.indexOf('slabdata');
      if (i < 0) continue;
      total += Number(parts[i + 2]) * Number(parts[5]) * 4096;
    }
    return total;
  } catch {
    return null;
  }
}

/**
 * Socket buffer memory of the established TCP sockets a server holds on these ports (`ss -tm`
 * skmem: receive, send, forward-allocated, queued, option memory and backlog).
 */
export function socketBufferBytes(ports: readonly number[]): number | null {
  if (ports.length === 0) return 0;
  const filter = ports.map((p) => `sport = :${p}`).join(' or ');
  const r = spawnSync('ss', ['-tmnH', 'state', 'established', `( ${filter} )`], { encoding: 'utf8', timeout: 30_000, maxBuffer: 512 << 20 });
  if (r.status !== 0) return null;
  let total = 0;
  for (const m of r.stdout.matchAll(/skmem:\(([^)]*)\)/g)) {
    for (const part of m[1]!.split(',')) {
      const k = /^([a-z]+)(\d+)$/.exec(part);
      if (k !== null && ['r', 't', 'f', 'w', 'o', 'bl'].includes(k[1]!)) total += Number(k[2]);
    }
  }
  return total;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memory_gib: number;
  kernel: string;
  node: string;
  open_files_limit: number | null;
}

export function machineInfo(): MachineInfo {
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  let limit: number | null = null;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    limit = m === null ? null : Number(m[1]);
  } catch {
    /* not Linux */
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    open_files_limit: limit,
  };
}

/** 1-minute load average: how busy the machine was (other work shows up here). */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}
