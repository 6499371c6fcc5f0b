#!/usr/bin/env node
// In a checkout (src/ beside this file) the TypeScript sources run through tsx, so a change
// needs no build; an installed package ships only the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/main.js');
}
