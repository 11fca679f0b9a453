// A broker where boards cannot speak for each other: Mosquitto with TLS client certificates,
// each board's certificate naming the board (CN, taken as its username with
// use_identity_as_username), and an ACL by which a board writes only its own
// PREFIX/<board>/events and /status and reads only its own /ack and /collected; only collector
// identities read every board and write marks. The texts are pure; `writeBrokerSetup` makes
// the CA and the certificates with openssl (argv, no shell).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HotplugError } from '../errors.js';

/** Names that go into a certificate's CN and a file name: plain, short. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface BrokerSetup {
  prefix: string;
  boards: string[];
  collectors: string[];
  /** The broker's host name or IP address, for its certificate. */
  host: string;
  port: number;
}

/** Why a setup cannot be made, or undefined. */
export function setupProblem(s: BrokerSetup): string | undefined {
  if (s.boards.length === 0) return 'no boards';
  if (s.collectors.length === 0) return 'no collectors';
  for (const name of [...s.boards, ...s.collectors]) {
    if (!NAME.test(name)) return `${JSON.stringify(name)} cannot be a certificate's name: letters, digits, ".", "_" and "-", up to 64, not starting with "." or "-"`;
  }
  const collectors = new Set(s.collectors);
  const both = s.boards.find((b) => collectors.has(b));
  if (both !== undefined) return `${JSON.stringify(both)} is both a board and a collector`;
  if (new Set(s.boards).size !== s.boards.length) return 'a board is listed twice';
  if (s.prefix === '' || /[+#\0\s]/.test(s.prefix)) return `the topic prefix ${JSON.stringify(s.prefix)} is empty or holds "+", "#", NUL or a space`;
  return undefined;
}

/** The ACL: `%u` is the client's username, the CN of its certificate. */
export function aclText(s: Pick<BrokerSetup, 'prefix' | 'collectors'>): string {
  const p = s.prefix;
  return [
    '# hotplugd fleet ACL (hotplugd broker-setup). A client\'s username is its certificate\'s CN.',
    '# Boards: write their own records and status; read their own acks and marks; nothing else.',
    `pattern write ${p}/%u/events`,
    `pattern write ${p}/%u/status`,
    `pattern read ${p}/%u/ack`,
    `pattern read ${p}/%u/collected`,
    '',
    '# Collectors: read every board\'s records and status; write every board\'s acks and marks.',
    ...s.collectors.flatMap((c) => [`user ${c}`, `topic read ${p}/+/events`, `topic read ${p}/+/status`, `topic readwrite ${p}/+/ack`, `topic readwrite ${p}/+/collected`, '']),
  ].join('\n');
}

/** mosquitto.conf for the setup's files in `dir`: TLS only, a certificate required, no anonymous clients. Everything else stays at Mosquitto's defaults. */
export function mosquittoConfText(s: Pick<BrokerSetup, 'port'>, dir: string): string {
  return [
    '# hotplugd fleet broker (hotplugd broker-setup). Include it from /etc/mosquitto/conf.d or run',
    `#   mosquitto -c ${join(dir, 'mosquitto.conf')}`,
    `listener ${s.port}`,
    `cafile ${join(dir, 'ca.crt')}`,
    `certfile ${join(dir, 'server.crt')}`,
    `keyfile ${join(dir, 'server.key')}`,
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    `acl_file ${join(dir, 'acl')}`,
    '',
  ].join('\n');
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new HotplugError('EIO', `openssl ${args[0]} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** A key and a certificate signed by the CA in `dir`, as NAME.key and NAME.crt under `sub`. */
function certificate(dir: string, sub: string, name: string, days: number, extensions: string[] = []): void {
  mkdirSync(join(dir, sub), { recursive: true });
  const base = join(sub, name);
  if (existsSync(join(dir, `${base}.crt`))) return; // made before: kept (boards already hold it)
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
  openssl(dir, ['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${base}.crt`, '-days', String(days), ...extensions]);
}

/**
 * Writes into `dir`: a CA (kept if there is one), the broker's certificate, one certificate per
 * board under boards/ and per collector under collectors/, `acl` and `mosquitto.conf`. Running
 * it again with more boards adds their certificates and keeps the others.
 */
export function writeBrokerSetup(s: BrokerSetup, dir: string, days = 3650): string[] {
  const problem = setupProblem(s);
  if (problem !== undefined) throw new HotplugError('EUSAGE', `broker-setup: ${problem}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(dir, 'ca.crt'))) openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(days), '-subj', '/CN=hotplugd fleet CA']);
  const san = /^[0-9.]+$|:/.test(s.host) ? `IP:${s.host}` : `DNS:${s.host}`;
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${san}\n`);
  certificate(dir, '.', 'server', days, ['-extfile', 'server.ext']);
  for (const board of s.boards) certificate(dir, 'boards', board, days);
  for (const collector of s.collectors) certificate(dir, 'collectors', collector, days);
  writeFileSync(join(dir, 'acl'), aclText(s));
  writeFileSync(join(dir, 'mosquitto.conf'), mosquittoConfText(s, dir));
  return ['ca.crt', 'server.crt', 'acl', 'mosquitto.conf', ...s.boards.map((b) => `boards/${b}.crt`), ...s.collectors.map((c) => `collectors/${c}.crt`)];
}
