// The command line's own build of mqtt.js (scripts/bundle-cli.mjs): one file, without the parts
// hotplugd never uses, and a clear error, not a silent fallback, where one is asked for.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BUNDLE = fileURLToPath(new URL('../../dist/cli/mqtt.cjs', import.meta.url));

function inChild(script: string): Record<string, unknown> {
  const code = `const m = require(${JSON.stringify(BUNDLE)}); const out = {}; ${script}
setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 200);`;
  return JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, MQTTJS_SOCKS_PROXY: '' } })) as Record<string, unknown>;
}

describe("the command line's mqtt.js", () => {
  it('is one module: nothing of node_modules is loaded with it', () => {
    const out = inChild('out.files = Object.keys(require.cache); out.connect = typeof m.connect;');
    expect(out.files).toEqual([BUNDLE]);
    expect(out.connect).toBe('function');
  });

  it('refuses the left-out transports by name', () => {
    const out = inChild(`try { m.connect('ws://127.0.0.1:9', { reconnectPeriod: 0 }); } catch (e) { out.ws = e.message; }
      process.env.MQTTJS_SOCKS_PROXY = 'socks5://127.0.0.1:9';
      try { m.connect('mqtt://127.0.0.1:9', { reconnectPeriod: 0 }); } catch (e) { out.socks = e.message; }`);
    expect(out.ws).toBe("WebSocket transport is left out of hotplugd's build of mqtt.js");
    expect(out.socks).toBe("SOCKS proxy support (MQTTJS_SOCKS_PROXY) is left out of hotplugd's build of mqtt.js");
  });
});
