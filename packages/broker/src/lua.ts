import { readFileSync } from 'node:fs';
import { SwitchyardError } from '@switchyard/protocol';
import type { Cluster, Redis } from 'ioredis';

type Client = Redis | Cluster;
type Value = string | number;

/**
 * A Lua script kept in its own `.lua` file, called by name. The file's header binds every
 * positional slot to a local (`local channel = KEYS[1]`, `local max_len = tonumber(ARGV[2])`);
 * `keys` and `args` list the same names in camelCase, and loading fails when the two disagree,
 * so a TypeScript caller names each argument and nobody orders a positional array by hand.
 */
export interface LuaScript<K extends string, A extends string> {
  /** The ioredis command name the script is defined under. */
  readonly name: string;
  readonly lua: string;
  readonly keys: readonly K[];
  readonly args: readonly A[];
  /** Defines the command on a client (once per client, before the first call). */
  define(client: Client): void;
  /**
   * Runs the script. `rest` follows the named ARGV slots, for scripts that take a list
   * (field/value pairs, one triple per user).
   */
  call<R>(client: Client, params: Readonly<Record<K | A, Value>>, rest?: readonly Value[]): Promise<R>;
}

/** Loads `.lua` files next to a module: `luaSource(import.meta.url, 'publish-fn.lua', 'publish.lua')`. */
export function luaSource(base: string | URL, ...files: string[]): string {
  return files.map((f) => readFileSync(new URL(f, base), 'utf8')).join('\n');
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/** The names a script's header binds to KEYS[i] / ARGV[i], in slot order. */
export function boundSlots(lua: string, slot: 'KEYS' | 'ARGV'): string[] {
  const names: string[] = [];
  const re = new RegExp(`^local (\\w+) = (?:tonumber\\()?${slot}\\[(\\d+)\\]\\)?\\s*$`, 'gm');
  for (const m of lua.matchAll(re)) names[Number(m[2]) - 1] = m[1]!;
  return names;
}

export function defineLua<K extends string, A extends string>(spec: {
  name: string;
  lua: string;
  keys: readonly K[];
  args: readonly A[];
}): LuaScript<K, A> {
  const { name, lua, keys, args } = spec;
  for (const [slot, want] of [['KEYS', keys], ['ARGV', args]] as const) {
    const have = boundSlots(lua, slot);
    const expected = want.map(snake);
    if (have.length !== expected.length || have.some((n, i) => n !== expected[i])) {
      throw new SwitchyardError('lua_script_mismatch', `lua script ${name}: header binds ${slot} as [${have.join(', ')}], caller names [${expected.join(', ')}]`);
    }
  }
  return {
    name,
    lua,
    keys,
    args,
    define(client) {
      client.defineCommand(name, { numberOfKeys: keys.length, lua });
    },
    call<R>(client: Client, params: Readonly<Record<K | A, Value>>, rest: readonly Value[] = []): Promise<R> {
      const fn = (client as unknown as Record<string, (...a: Value[]) => Promise<R>>)[name];
      if (typeof fn !== 'function') throw new SwitchyardError('lua_script_undefined', `lua script ${name} is not defined on this client (call define first)`);
      return fn.call(client, ...keys.map((k) => params[k]), ...args.map((a) => params[a]), ...rest);
    },
  };
}
