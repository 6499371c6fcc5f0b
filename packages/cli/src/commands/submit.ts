import { UsageError, parse } from '../args.js';
import { CommandFailed, REMOTE_OPTIONS, endpoints, tokenSource } from '../remote.js';
import { watch } from './watch.js';

export const summary = 'submit a job (POST /jobs) and print its id; --watch to follow it';

const HELP = `usage: switchyard submit [--sample ID] [--params JSON] [--r1 PATH] [--r2 PATH] [--output PATH] [options]

options:
  --url URL        node: http(s)://host:port (default SWITCHYARD_URL or http://127.0.0.1:8765)
  --token JWT      token (or SWITCHYARD_TOKEN); or JWT_SECRET with --user ID to mint one
  --json           print the whole reply as JSON instead of the job id
  --watch          then follow the job like \`switchyard watch\` (same exit codes)
`;

/** Exit code when the server refused or could not take the job. */
const EXIT_REFUSED = 4;

export async function submit(argv: string[]): Promise<void> {
  const { values, positionals, common } = parse(argv, {
    ...REMOTE_OPTIONS,
    sample: { type: 'string' },
    params: { type: 'string' },
    r1: { type: 'string' },
    r2: { type: 'string' },
    output: { type: 'string' },
    json: { type: 'boolean' },
    watch: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${HELP}`);
  let params: unknown;
  if (values.params !== undefined) {
    try {
      params = JSON.parse(values.params);
    } catch {
      throw new UsageError(`--params must be JSON, e.g. --params '{"min_quality":20}'`);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new UsageError('--params must be a JSON object');
  }
  const body = {
    ...(values.sample !== undefined && { sample_id: values.sample }),
    ...(values.r1 !== undefined && { path_to_r1: values.r1 }),
    ...(values.r2 !== undefined && { path_to_r2: values.r2 }),
    ...(values.output !== undefined && { output_path: values.output }),
    ...(params !== undefined && { params }),
  };
  const { http } = endpoints(values.url, common.env);
  const source = tokenSource(values, common, undefined);
  const token = typeof source === 'string' ? source : await source();
  try {
    const reply = await post(`${http}/jobs`, token, body);
    const jobId = reply['job_id'];
    if (typeof jobId !== 'string') throw new CommandFailed(`POST /jobs answered without a job_id: ${JSON.stringify(reply)}`, EXIT_REFUSED);
    process.stdout.write(values.json === true ? `${JSON.stringify(reply)}\n` : `${jobId}\n`);
    if (values.watch === true) {
      const rest = ['--url', values.url ?? http];
      if (values.token !== undefined) rest.push('--token', values.token);
      if (values.user !== undefined) rest.push('--user', values.user);
      if (values.ttl !== undefined) rest.push('--ttl', values.ttl);
      await watch([jobId, ...rest]);
    }
  } catch (err) {
    if (!(err instanceof CommandFailed)) throw err;
    process.stderr.write(`switchyard submit: ${err.message}\n`);
    process.exitCode = err.exitCode;
  }
}

async function post(url: string, token: string, body: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (err) {
    throw new CommandFailed(`cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, EXIT_REFUSED);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const reply = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  if (res.status !== 202 && res.status !== 200 && res.status !== 201) {
    const code = typeof reply['code'] === 'string' ? ` ${reply['code']}` : '';
    const why = typeof reply['error'] === 'string' ? `: ${reply['error']}` : text === '' ? '' : `: ${text.slice(0, 200)}`;
    throw new CommandFailed(`POST /jobs answered ${res.status}${code}${why}`, EXIT_REFUSED);
  }
  return reply;
}
