import { spawn, type ChildProcess } from 'node:child_process';
import type { FailureClass, JobSpec } from '@switchyard/jobs';
import type { Json } from '@switchyard/protocol';
import type { RunEnd } from './failure.js';
import { LineSplitter, Tail, parsePipelineLine } from './lines.js';
import { DEFAULT_PIPELINE_ENV_ALLOW, pipelineEnv } from './pipeline-env.js';

/** After the pipeline exits, how long its output may still drain before it is cut off. */
const DRAIN_AFTER_EXIT_MS = 2000;
/** Bytes of stderr and of stray stdout kept for the failure message. */
const OUTPUT_TAIL_BYTES = 8192;

/** Why the runner stopped a run: a cancel, a hand-back on shutdown, a timeout, or its lease was lost (the job was reaped). */
export type StopReason = 'cancel' | 'handback' | 'timeout' | 'lost';

export interface PipelineEnd extends RunEnd {
  /** The last `{"result": ...}` the pipeline printed. */
  result?: Json;
  /** The last `{"error": ...}` the pipeline printed. */
  declaredError?: string;
  /** Why the runner stopped it, if it did. */
  stopped?: StopReason;
  durationMs: number;
  /** Lines longer than MAX_LINE_BYTES that were skipped. */
  overlongLines: number;
}

export interface PipelineOptions {
  executable: string;
  job: JobSpec;
  /** The job's own variables (JOB_ID, GPU_DEVICE_ID, ...), added to what `envAllow` lets through. */
  env: Record<string, string>;
  /** Which of the runner's variables the pipeline sees (PIPELINE_ENV_ALLOW); default DEFAULT_PIPELINE_ENV_ALLOW. */
  envAllow?: readonly string[];
  timeoutMs: number;
  killGraceMs: number;
  maxLineBytes: number;
  onProgress(update: { progress?: number; stage?: string; message?: string }): void;
}

export interface PipelineRun {
  readonly done: Promise<PipelineEnd>;
  /** Stops the pipeline (its whole process group): SIGTERM, then SIGKILL after the grace. */
  stop(reason: StopReason): void;
}

/** `.js`/`.mjs`/`.cjs` run with this Node; anything else is executed directly. */
export function commandFor(executable: string): [string, string[]] {
  return /\.(c|m)?js$/.test(executable) ? [process.execPath, [executable]] : [executable, []];
}

/**
 * Runs the pipeline once: the job JSON on stdin, progress parsed from stdout with bounded
 * buffers, a timeout, and a stop that reaches the pipeline's children too (it runs in its
 * own process group). Never throws; every ending is described by the PipelineEnd.
 */
export function startPipeline(o: PipelineOptions): PipelineRun {
  const started = Date.now();
  const stderr = new Tail(OUTPUT_TAIL_BYTES);
  const stray = new Tail(OUTPUT_TAIL_BYTES);
  let result: Json | undefined;
  let declaredError: string | undefined;
  let declaredClass: FailureClass | undefined;
  let overlongLines = 0;
  let stopped: StopReason | undefined;
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  let exited = false;

  const env = pipelineEnv(process.env, o.envAllow ?? DEFAULT_PIPELINE_ENV_ALLOW, o.env);
  const [cmd, args] = commandFor(o.executable);
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ESPAWN';
    return {
      done: Promise.resolve({ exitCode: null, signal: null, timedOut: false, spawnError: code, output: (err as Error).message, durationMs: 0, overlongLines: 0 }),
      stop() {},
    };
  }

  const splitter = new LineSplitter(
    (line) => {
      const parsed = parsePipelineLine(line);
      switch (parsed.kind) {
        case 'progress':
          o.onProgress(parsed);
          break;
        case 'result':
          result = parsed.result;
          break;
        case 'error':
          declaredError = parsed.error;
          declaredClass = parsed.class;
          break;
        case 'text':
          if (parsed.text.trim() !== '') stray.push(`${parsed.text.slice(0, 1000)}\n`);
          break;
      }
    },
    { maxLineBytes: o.maxLineBytes, onOverlong: () => overlongLines++ },
  );
  child.stdout!.on('data', (chunk: Buffer) => splitter.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  // A pipeline that exits without reading stdin makes our write fail with EPIPE: not our problem.
  child.stdin!.on('error', () => {});
  child.stdin!.end(`${JSON.stringify(o.job)}\n`);

  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  };
  const stop = (reason: StopReason) => {
    if (stopped !== undefined || exited) return;
    stopped = reason;
    if (reason === 'timeout') timedOut = true;
    signalGroup('SIGTERM');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), o.killGraceMs);
  };
  const timeout = setTimeout(() => stop('timeout'), o.timeoutMs);

  const done = new Promise<PipelineEnd>((resolve) => {
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let spawnError: string | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      splitter.end();
      // Whatever the pipeline left running in its group goes with it.
      signalGroup('SIGKILL');
      child.stdout!.destroy();
      child.stderr!.destroy();
      const output = [stderr.toString(), stray.toString()].filter((s) => s.trim() !== '').join('\n');
      resolve({
        exitCode,
        signal: exitSignal,
        timedOut,
        ...(spawnError !== undefined && { spawnError }),
        output: declaredError !== undefined ? `${declaredError}\n${output}` : output,
        ...(declaredClass !== undefined && { declaredClass }),
        ...(declaredError !== undefined && { declaredError }),
        ...(result !== undefined && { result }),
        ...(stopped !== undefined && { stopped }),
        durationMs: Date.now() - started,
        overlongLines,
      });
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        spawnError = err.code ?? 'ESPAWN';
        stderr.push(err.message);
        exited = true;
        settle();
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      drainTimer = setTimeout(settle, DRAIN_AFTER_EXIT_MS);
    });
    child.once('close', () => {
      if (exited) settle();
    });
  });

  return { done, stop };
}
