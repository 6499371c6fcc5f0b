import { describe, expect, it } from 'vitest';
import { boundSlots, defineLua } from '../src/lua.js';
import { historyScript, publishScript } from '../src/scripts.js';

const LUA = `-- KEYS: channel
-- ARGV: max_len, payload
local channel = KEYS[1]
local max_len = tonumber(ARGV[1])
local payload = ARGV[2]
return 1`;

describe('Lua scripts with named arguments', () => {
  it('reads the names a header binds, in slot order', () => {
    expect(boundSlots(LUA, 'KEYS')).toEqual(['channel']);
    expect(boundSlots(LUA, 'ARGV')).toEqual(['max_len', 'payload']);
  });

  it('refuses a caller whose names or order differ from the header', () => {
    expect(() => defineLua({ name: 't', lua: LUA, keys: ['channel'], args: ['maxLen', 'payload'] })).not.toThrow();
    expect(() => defineLua({ name: 't', lua: LUA, keys: ['channel'], args: ['payload', 'maxLen'] })).toThrow(/header binds ARGV as \[max_len, payload\]/);
    expect(() => defineLua({ name: 't', lua: LUA, keys: ['channel'], args: ['maxLen'] })).toThrow(/ARGV/);
    expect(() => defineLua({ name: 't', lua: LUA, keys: [], args: ['maxLen', 'payload'] })).toThrow(/KEYS/);
  });

  it('passes keys, then named arguments, then the rest, in the header order', async () => {
    const script = defineLua({ name: 'syT', lua: LUA, keys: ['channel'], args: ['maxLen', 'payload'] });
    const calls: unknown[][] = [];
    const client = {
      defineCommand: (name: string, def: { numberOfKeys: number }) => calls.push(['define', name, def.numberOfKeys]),
      syT: (...a: unknown[]) => Promise.resolve(calls.push(a)),
    };
    script.define(client as never);
    await script.call(client as never, { payload: 'p', channel: 'c', maxLen: 5 }, ['x', 1]);
    expect(calls).toEqual([['define', 'syT', 1], ['c', 5, 'p', 'x', 1]]);
    expect(() => script.call({} as never, { payload: 'p', channel: 'c', maxLen: 5 })).toThrow(/not defined/);
  });

  it('loads the broker scripts from their .lua files', () => {
    expect(publishScript.lua).toContain('local function sy_publish');
    expect(publishScript.lua).toContain('local function json_string');
    expect(historyScript.keys).toEqual(['meta', 'hist']);
  });
});
