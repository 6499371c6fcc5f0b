#!/usr/bin/env node
// A stand-in for a real sequencing pipeline, for `switchyard dev` and the tests.
//
// It reads the job JSON on stdin (PROTOCOL.md §7), walks through a few stages printing
// progress lines ({"progress","stage","message"}) on stdout, and ends with {"result": ...}.
// What it does is steered by the job's "params":
//
//   stages      number of stages (1–20, default 4)
//   stage_ms    milliseconds per stage (default 400)
//   fail        "transient" (exit 75, EX_TEMPFAIL), "permanent" (exit 65, EX_DATAERR),
//               "oom" (a CUDA out-of-memory message, exit 1), "crash" (exit 1, no reason)
//   fail_times  fail only on the first N attempts (JOB_ATTEMPT <= N), then succeed
//   fail_at     stage index at which to fail (default: the middle)
//   sleep_ms    sleep this long before the first stage (timeouts, kills, cancels)
//   noise       print garbage lines and one 1 MiB line between stages
//   result      the result object to report (default: a small summary)
//
// Environment from the runner: JOB_ID, JOB_ATTEMPT, GPU_DEVICE_ID / CUDA_VISIBLE_DEVICES
// (when it runs on a GPU slot), REFERENCE_DB_PATH, RESISTANCE_DB_PATH.

const STAGE_NAMES = ['prepare', 'align', 'call_variants', 'annotate', 'report'];

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function writeAll(text) {
  return new Promise((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', resolve)));
}

let job;
try {
  job = JSON.parse(await readStdin());
} catch (err) {
  process.stderr.write(`invalid input: the job on stdin is not JSON (${err.message})\n`);
  process.exit(65);
}

const params = job.params && typeof job.params === 'object' ? job.params : {};
const stages = Math.min(20, Math.max(1, Number.isInteger(params.stages) ? params.stages : 4));
const stageMs = Number.isFinite(params.stage_ms) ? Math.max(0, params.stage_ms) : 400;
const attempt = Number(process.env.JOB_ATTEMPT ?? 1);
const failTimes = Number.isInteger(params.fail_times) ? params.fail_times : Infinity;
const fail = typeof params.fail === 'string' && attempt <= failTimes ? params.fail : undefined;
const failAt = Number.isInteger(params.fail_at) ? params.fail_at : Math.floor(stages / 2);

process.on('SIGTERM', () => {
  process.stderr.write(`job ${process.env.JOB_ID} stopped by SIGTERM\n`);
  process.exit(143);
});

if (Number.isFinite(params.sleep_ms) && params.sleep_ms > 0) {
  say({ progress: 0, stage: 'waiting', message: `sleeping ${params.sleep_ms} ms` });
  await sleep(params.sleep_ms);
}

for (let i = 0; i < stages; i++) {
  const stage = STAGE_NAMES[i % STAGE_NAMES.length];
  if (fail !== undefined && i === failAt) {
    switch (fail) {
      case 'transient':
        process.stderr.write('temporary failure: reference database busy, try again later\n');
        process.exit(75);
        break;
      case 'permanent':
        process.stderr.write(`invalid input: ${job.path_to_r1 ?? 'path_to_r1'} is not a FASTQ file\n`);
        process.exit(65);
        break;
      case 'oom':
        process.stderr.write('RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n');
        process.exit(1);
        break;
      default:
        process.exit(1);
    }
  }
  say({ progress: i / stages, stage, message: `${stage} (${i + 1}/${stages}) on ${process.env.GPU_DEVICE_ID !== undefined ? `GPU ${process.env.GPU_DEVICE_ID}` : 'CPU'}` });
  if (params.noise === true) {
    await writeAll('this is not JSON\n{"half": \n[1,2,3]\n{"progress": "not a number"}\n');
    await writeAll(`${'x'.repeat(1024 * 1024)}\n`);
  }
  await sleep(stageMs);
}

say({ progress: 1, stage: 'done', message: 'finished' });
say({ result: params.result ?? { sample_id: job.sample_id ?? null, stages, attempt, output_path: job.output_path ?? null } });
