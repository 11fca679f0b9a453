// `hotplugd serve`: the history as a web page, read-only.
import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { defaultControlPath, defaultDbPath, SYSFS_ROOT } from '../defaults.js';
import { HotplugError } from '../errors.js';
import { createLogger, isLogLevel } from '../log.js';
import { DEFAULT_CONNECTION_LIMITS } from '../server/connections.js';
import { WebServer } from '../server/http.js';
import { parseCommandArgs, parseDuration, parsePositiveInt, usageError, type Command } from './args.js';

const ASSETS = fileURLToPath(new URL('../web', import.meta.url));

const usage = `Usage: hotplugd serve [options]

The device history as a web page: devices present and gone, each device's
properties, links, plug-in sessions and events (what the rules did, failures
first to the eye), live events as they are processed, event rates, incidents,
rule figures and network links. Read-only. The page is built on a JSON API
under /api/ (see the README).

Options:
  --listen ADDR           HOST:PORT or unix:PATH (default: 127.0.0.1:8073)
  --auth-token-file FILE  a bearer token every /api/ request must carry
                          (needed on any address but localhost)
  --db PATH               history database (default: ${defaultDbPath()})
  --control PATH          the daemon's control socket, for the live view and
                          status (default: ${defaultControlPath()})
  --sysfs ROOT            sysfs root, to tell present devices (default: /sys)
  --fleet PATH|URL        also a collected fleet database ('hotplugd collect
                          --db'): its boards and their events
  --max-connections N     open connections at most (default: 256); at the
                          limit the oldest idle one is closed for a newcomer
  --max-connections-per-address N
                          from one address at most (default: 64)
  --header-timeout DUR    a request's headers must be complete this long after
                          connecting or the previous answer (default: 10s)
  --idle-timeout DUR      an idle keep-alive connection is closed (default: 5s)
  --log-level LEVEL       (default: info)
  -h, --help              show this help`;

type Listen = { host: string; port: number } | { path: string };

function parseListen(text: string): Listen {
  if (text.startsWith('unix:')) {
    if (text.length === 5) throw usageError('serve', '--listen unix:PATH needs a path');
    return { path: text.slice(5) };
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw usageError('serve', `--listen: expected HOST:PORT, [IPv6]:PORT or unix:PATH; got ${JSON.stringify(text)}`);
  return { host: match[1] ?? match[2]!, port };
}

/** Removes a unix socket a crashed server left behind (nobody answers on it); a live one stays. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) return; // not ours to remove: listen() reports it
  } catch {
    return; // nothing there
  }
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => (probe.destroy(), resolve(true)));
    probe.once('error', () => resolve(false));
  });
  if (!answered) unlinkSync(path);
}

const isLocal = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

export const serveCommand: Command = {
  name: 'serve',
  usage,
  async run(argv) {
    const values = parseCommandArgs('serve', usage, argv, {
      listen: { type: 'string' }, 'auth-token-file': { type: 'string' }, db: { type: 'string' }, control: { type: 'string' }, sysfs: { type: 'string' }, fleet: { type: 'string' }, 'log-level': { type: 'string' },
      'max-connections': { type: 'string' }, 'max-connections-per-address': { type: 'string' }, 'header-timeout': { type: 'string' }, 'idle-timeout': { type: 'string' },
    });
    if (values === null) return 0;
    const level = values['log-level'] ?? 'info';
    if (!isLogLevel(level)) throw usageError('serve', `--log-level: unknown level ${JSON.stringify(level)}`);
    const listen = parseListen(values.listen ?? '127.0.0.1:8073');
    let token: string | undefined;
    if (values['auth-token-file'] !== undefined) {
      try {
        token = readFileSync(values['auth-token-file'], 'utf8').trim();
      } catch (error) {
        throw new HotplugError('EUSAGE', `hotplugd serve: cannot read --auth-token-file: ${(error as Error).message}`, { cause: error });
      }
      if (token.length < 16) throw usageError('serve', '--auth-token-file: the token must be at least 16 characters');
    }
    if ('host' in listen && !isLocal(listen.host) && token === undefined) {
      throw usageError('serve', `--listen ${listen.host}: an address other than localhost needs --auth-token-file (anyone who reaches it would read the history)`);
    }
    const limits = {
      maxConnections: parsePositiveInt('serve', 'max-connections', values['max-connections'], DEFAULT_CONNECTION_LIMITS.maxConnections)!,
      maxPerAddress: parsePositiveInt('serve', 'max-connections-per-address', values['max-connections-per-address'], DEFAULT_CONNECTION_LIMITS.maxPerAddress)!,
      headerTimeoutMs: parseDuration('serve', 'header-timeout', values['header-timeout']) ?? DEFAULT_CONNECTION_LIMITS.headerTimeoutMs,
      idleTimeoutMs: parseDuration('serve', 'idle-timeout', values['idle-timeout']) ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
    };
    const log = await createLogger(level);
    const web = new WebServer({ dbPath: values.db ?? defaultDbPath(), controlPath: values.control ?? defaultControlPath(), sysfsRoot: values.sysfs ?? SYSFS_ROOT, assetsDir: ASSETS, token, fleet: values.fleet, limits, log });
    if ('path' in listen) await removeStaleSocket(listen.path);
    await new Promise<void>((resolve, reject) => {
      web.server.once('error', (error) => reject(new HotplugError('ELISTEN', `hotplugd serve: cannot listen on ${values.listen ?? '127.0.0.1:8073'}: ${error.message}`, { cause: error })));
      if ('path' in listen) web.server.listen(listen.path, resolve);
      else web.server.listen(listen.port, listen.host, resolve);
    });
    const address = web.server.address();
    const where = typeof address === 'string' ? `unix:${address}` : `http://${address?.family === 'IPv6' ? `[${address.address}]` : address?.address}:${address?.port}/`;
    log.info({ listen: where, auth: token !== undefined }, `Serving the history on ${where}`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await web.close();
    return 0;
  },
};
