import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, SwitchyardClient } from '../src/index.js';
import { resolveOptions } from '../src/options.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../src');

describe('options', () => {
  it('fills in the defaults in one place', () => {
    const o = resolveOptions({ url: 'ws://127.0.0.1:1/ws', token: 't' });
    expect(o).toMatchObject({ autoConnect: true, requestTimeoutMs: 10_000, maxQueuedRequests: 100, resume: true, reconnect: { enabled: true, initialDelayMs: 250, maxDelayMs: 15_000, factor: 2, maxAttempts: Infinity } });
  });

  it('refuses bad values, naming the field', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ url: 'http://x', token: 't' }, 'url'],
      [{ url: [], token: 't' }, 'url'],
      [{ url: 5, token: 't' }, 'url'],
      [{ url: 'ws://x', token: '' }, 'token'],
      [{ url: 'ws://x', token: 't', requestTimeoutMs: 0 }, 'requestTimeoutMs'],
      [{ url: 'ws://x', token: 't', maxQueuedRequests: -1 }, 'maxQueuedRequests'],
      [{ url: 'ws://x', token: 't', reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, 'reconnect.maxDelayMs'],
      [{ url: 'ws://x', token: 't', reconnect: { factor: 0 } }, 'reconnect.factor'],
    ];
    for (const [options, field] of bad) {
      let err: unknown;
      try {
        resolveOptions(options as never);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
      expect((err as Error).message).toContain(`"${field}"`);
    }
  });

  it('queues requests while offline and refuses past maxQueuedRequests', async () => {
    const client = new SwitchyardClient({ url: 'ws://127.0.0.1:9/ws', token: 't', autoConnect: false, maxQueuedRequests: 2, requestTimeoutMs: 60_000 });
    const a = client.publish('c', 'e', 1);
    const b = client.direct('user:x', 2);
    await expect(client.publish('c', 'e', 3)).rejects.toMatchObject({ code: 'queue_full', retriable: true });
    await client.close();
    await expect(a).rejects.toMatchObject({ code: 'closed' });
    await expect(b).rejects.toMatchObject({ code: 'closed' });
    await expect(client.publish('c', 'e', 4)).rejects.toMatchObject({ code: 'closed' });
  });

  it('times out a queued request as "never sent"', async () => {
    const client = new SwitchyardClient({ url: 'ws://127.0.0.1:9/ws', token: 't', autoConnect: false, requestTimeoutMs: 30 });
    await expect(client.publish('c', 'e', 1)).rejects.toMatchObject({ code: 'timeout', stage: 'queued' });
    await client.close();
  });

  it('keeps React out of the main entry: nothing reachable from index.ts imports it', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(SRC, file), 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) {
        const spec = m[1]!;
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^react/);
        if (spec.startsWith('./')) visit(spec.slice(2).replace(/\.js$/, '.ts'));
      }
    };
    visit('index.ts');
    expect(seen.has('client.ts')).toBe(true);
    expect(seen.has('react.ts')).toBe(false);
    const pkg = JSON.parse(readFileSync(join(SRC, '../package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(pkg['dependencies']?.['react']).toBeUndefined();
    expect(pkg['peerDependenciesMeta']?.['react']).toEqual({ optional: true });
    expect(pkg['exports']).toMatchObject({ '.': './src/index.ts', './react': './src/react.ts' });
  });
});

import { withSessionHint } from '../src/client.js';

describe('withSessionHint', () => {
  it('adds or replaces sid and keeps other query parameters', () => {
    expect(withSessionHint('ws://h/ws', 's_1')).toBe('ws://h/ws?sid=s_1');
    expect(withSessionHint('ws://h/ws?token=t', 's_1')).toBe('ws://h/ws?token=t&sid=s_1');
    expect(withSessionHint('ws://h/ws?sid=old&token=t', 's_2')).toBe('ws://h/ws?token=t&sid=s_2');
    expect(withSessionHint('ws://h/ws?token=t&sid=old', 's_2')).toBe('ws://h/ws?token=t&sid=s_2');
  });
});
