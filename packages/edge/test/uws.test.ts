import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UwsFallbackError } from '../src/errors.js';
import { isNative, loadUws, type Uws } from '../src/uws.js';

/** A fresh copy of the module, with its cache empty. */
async function freshUwsModule(): Promise<typeof import('../src/uws.js')> {
  vi.resetModules();
  return import('../src/uws.js');
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('loadUws', () => {
  it('loads the native addon on this platform', () => {
    const uws = loadUws();
    expect(isNative(uws)).toBe(true);
    expect(typeof uws.App).toBe('function');
    expect(typeof uws.us_listen_socket_close).toBe('function');
    // Cached: the same module object every time.
    expect(loadUws()).toBe(uws);
  });

  for (const flag of ['1', 'true', 'TRUE', 'True']) {
    it(`refuses UWS_USE_FALLBACK=${flag} with UwsFallbackError`, async () => {
      vi.stubEnv('UWS_USE_FALLBACK', flag);
      const fresh = await freshUwsModule();
      const { UwsFallbackError: FreshError } = await import('../src/errors.js');
      let caught: unknown;
      try {
        fresh.loadUws();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FreshError);
      expect((caught as Error).name).toBe('UwsFallbackError');
      expect((caught as { code: string }).code).toBe('uws_fallback');
      expect((caught as Error).message).toContain('UWS_USE_FALLBACK');
    });
  }

  it('ignores UWS_USE_FALLBACK=0', async () => {
    vi.stubEnv('UWS_USE_FALLBACK', '0');
    const fresh = await freshUwsModule();
    expect(fresh.isNative(fresh.loadUws())).toBe(true);
  });
});

describe('isNative', () => {
  it('is false for the package’s own ws-based fallback', () => {
    // The aliased package ships its shim in dist/; load it directly, as it would load itself.
    const require = createRequire(import.meta.url);
    const shim = require('uWebSockets.js/dist/index.js') as Partial<Uws>;
    expect(typeof shim.App).toBe('function');
    expect(isNative(shim)).toBe(false);
  });

  it('is false for JavaScript look-alikes and for modules without App', () => {
    expect(isNative({})).toBe(false);
    expect(isNative({ App: (() => undefined) as unknown as Uws['App'] })).toBe(false);
    // A JavaScript function whose source merely mentions the marker is still JavaScript.
    const fake = function App() {
      return '[native code]';
    };
    expect(isNative({ App: fake as unknown as Uws['App'] })).toBe(false);
  });
});

describe('UwsFallbackError', () => {
  it('explains what to do and carries the detail', () => {
    const err = new UwsFallbackError('binary missing');
    expect(err.code).toBe('uws_fallback');
    expect(err.message).toContain('binary missing');
    expect(err.message).toContain('README');
  });
});
