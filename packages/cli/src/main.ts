import { ConfigError } from '@switchyard/config';
import { UsageError } from './args.js';
import * as benchCmd from './commands/bench.js';
import * as devCmd from './commands/dev.js';
import * as edgeCmd from './commands/edge.js';
import * as runnerCmd from './commands/runner.js';
import * as submitCmd from './commands/submit.js';
import * as tokenCmd from './commands/token.js';
import * as watchCmd from './commands/watch.js';

interface Command {
  summary: string;
  run(argv: string[]): Promise<void>;
}

const commands: Record<string, Command> = {
  edge: { summary: edgeCmd.summary, run: edgeCmd.edge },
  dev: { summary: devCmd.summary, run: devCmd.dev },
  token: { summary: tokenCmd.summary, run: tokenCmd.token },
  submit: { summary: submitCmd.summary, run: submitCmd.submit },
  watch: { summary: watchCmd.summary, run: watchCmd.watch },
  runner: { summary: runnerCmd.summary, run: runnerCmd.runner },
  bench: { summary: benchCmd.summary, run: benchCmd.bench },
};

/** Exit codes: 2 usage, 78 configuration (sysexits EX_CONFIG), 1 anything else. */
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: switchyard <command> [--config file.json] [--log-level level] [options]',
    '',
    'commands:',
    ...lines,
    '',
    'Configuration comes from environment variables or a JSON file of the same keys (see README).',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return;
  }
  const command = commands[name];
  if (command === undefined) throw new UsageError(`unknown command "${name}"`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`switchyard ${name}: ${command.summary}\n`);
    return;
  }
  await command.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`switchyard: ${err.message}\n\n${usage()}`);
    process.exit(EXIT_USAGE);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`switchyard: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  process.stderr.write(`switchyard: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
