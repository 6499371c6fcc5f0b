/**
 * The SDK's wire vocabulary comes from @switchyard/protocol rather than a copy. (File sizes and
 * import cycles of every package are checked by test/meta/structure.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../src');
const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
const text = new Map(files.map((f) => [f, readFileSync(join(SRC, f), 'utf8')]));
describe('the client SDK source', () => {
  it('has its parts, and takes frame types and codes from @switchyard/protocol, with no copy of its own', () => {
    expect(files).toEqual(expect.arrayContaining(['client.ts', 'connection.ts', 'subscriptions.ts']));
    expect(files).not.toContain('frames.ts');
    for (const [file, body] of text) {
      expect(body, file).not.toMatch(/SlowConsumer:\s*4010|AuthFailed:\s*4001/);
      expect(body, file).not.toMatch(/interface (EventFrame|SubscriptionResultFrame|AuthSuccessFrame)\b/);
    }
    expect(text.get('connection.ts')).toContain("from '@switchyard/protocol'");
  });
});
