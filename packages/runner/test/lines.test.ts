import { describe, expect, it } from 'vitest';
import { LineSplitter, Tail, parsePipelineLine } from '../src/index.js';

function split(chunks: (string | Buffer)[], maxLineBytes = 64): { lines: string[]; overlong: number[] } {
  const lines: string[] = [];
  const overlong: number[] = [];
  const s = new LineSplitter((l) => lines.push(l), { maxLineBytes, onOverlong: (n) => overlong.push(n) });
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  return { lines, overlong };
}

describe('LineSplitter', () => {
  it('joins lines split across chunks and splits chunks holding several lines', () => {
    expect(split(['{"progr', 'ess":0.5}\nsecond\nthi', 'rd\n']).lines).toEqual(['{"progress":0.5}', 'second', 'third']);
  });

  it('delivers a last line without a newline at the end, and drops CR of CRLF', () => {
    expect(split(['a\r\nb']).lines).toEqual(['a', 'b']);
  });

  it('keeps empty lines as empty lines', () => {
    expect(split(['\n\nx\n']).lines).toEqual(['', '', 'x']);
  });

  it('skips a line longer than the limit whole, reports its size, and goes on with the next', () => {
    const { lines, overlong } = split(['ok\n', 'x'.repeat(50), 'y'.repeat(50), 'z'.repeat(50), '\nafter\n'], 64);
    expect(lines).toEqual(['ok', 'after']);
    expect(overlong).toEqual([150]);
  });

  it('handles a megabyte line in one chunk without keeping it', () => {
    const { lines, overlong } = split([Buffer.alloc(1024 * 1024, 0x78), '\n{"progress":1}\n'], 65_536);
    expect(lines).toEqual(['{"progress":1}']);
    expect(overlong).toEqual([1024 * 1024]);
  });

  it('decodes UTF-8 split across chunks', () => {
    const bytes = Buffer.from('{"message":"größe ✓"}\n');
    expect(split([bytes.subarray(0, 16), bytes.subarray(16)]).lines).toEqual(['{"message":"größe ✓"}']);
  });
});

describe('parsePipelineLine', () => {
  it('reads progress lines', () => {
    expect(parsePipelineLine('{"progress":0.42,"stage":"align","message":"aligning"}')).toEqual({ kind: 'progress', progress: 0.42, stage: 'align', message: 'aligning' });
    expect(parsePipelineLine('  {"stage":"call"}  ')).toEqual({ kind: 'progress', stage: 'call' });
  });

  it('clamps progress to 0–1 and ignores a progress that is not a number', () => {
    expect(parsePipelineLine('{"progress":7}')).toEqual({ kind: 'progress', progress: 1 });
    expect(parsePipelineLine('{"progress":-1}')).toEqual({ kind: 'progress', progress: 0 });
    expect(parsePipelineLine('{"progress":"half"}').kind).toBe('text');
    expect(parsePipelineLine('{"progress":"half","stage":"x"}')).toEqual({ kind: 'progress', stage: 'x' });
  });

  it('clips long stage and message strings', () => {
    const p = parsePipelineLine(JSON.stringify({ stage: 's'.repeat(500), message: 'm'.repeat(5000) }));
    expect(p.kind === 'progress' && p.stage!.length).toBe(200);
    expect(p.kind === 'progress' && p.message!.length).toBe(1000);
  });

  it('reads a result and a declared error', () => {
    expect(parsePipelineLine('{"result":{"variants":12}}')).toEqual({ kind: 'result', result: { variants: 12 } });
    expect(parsePipelineLine('{"result":null}')).toEqual({ kind: 'result', result: null });
    expect(parsePipelineLine('{"error":"bad reference","class":"permanent"}')).toEqual({ kind: 'error', error: 'bad reference', class: 'permanent' });
    expect(parsePipelineLine('{"error":"x","class":"sometimes"}')).toEqual({ kind: 'error', error: 'x' });
  });

  it('treats everything else as plain text, never as an error', () => {
    for (const line of ['', 'hello', '{', '{"a":1', '[1,2]', '{"other":true}', 'null', '{"progress":null}', '\u0000\u0001']) {
      expect(parsePipelineLine(line).kind).toBe('text');
    }
  });
});

describe('Tail', () => {
  it('keeps the last bytes and gives the last non-empty line', () => {
    const t = new Tail(10);
    for (let i = 0; i < 100; i++) t.push(`line ${i}\n`);
    expect(t.toString().length).toBeLessThanOrEqual(10);
    expect(t.lastLine()).toBe('line 99');
  });
});
