// Fleet forwarding over TLS with client certificates (a CA and certificates made by openssl
// for the test), and with a username and password read from a file; a wrong password or a
// missing certificate is a clear log line and a retry, never a dead daemon.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, DaemonProcess, makeTempDir, Netns, waitFor } from '../helpers/netns.js';
import { MOSQUITTO, Mosquitto } from '../helpers/mosquitto.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=hotplugd-test-ca');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, ext] of [['server', ['-extfile', 'san.ext']], ['b1', []], ['collector', []]] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...ext);
  }
}

const collectedCount = (path: string): number => {
  try {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM fleet_events WHERE board = 'b1'").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
};

describe.runIf(canUseNamespaces() && (MOSQUITTO !== undefined || process.env.CI === 'true'))('fleet forwarding, secured', () => {
  it('over TLS with client certificates; a board without one is refused, logged, and retries', async () => {
    const netns = new Netns('fleettls');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('fleettls');
    cleanups.push(() => dir.remove());
    const pki = join(dir.path, 'pki');
    mkdirSync(pki);
    makeCertificates(pki);
    const port = 18830 + Math.floor(Math.random() * 1000);
    const broker = new Mosquitto(netns, join(dir.path, 'broker'), {
      persistence: false, port,
      extra: [`listener ${port} 127.0.0.1`, `cafile ${pki}/ca.crt`, `certfile ${pki}/server.crt`, `keyfile ${pki}/server.key`, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false'],
    });
    cleanups.push(() => broker.stop());
    await broker.start();
    const url = `mqtts://127.0.0.1:${port}`;
    const fleetDb = join(dir.path, 'fleet.db');
    const collector = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'collect', '--broker', url, '--db', fleetDb, '--client-id', 'c-tls',
      '--ca', `${pki}/ca.crt`, '--cert', `${pki}/collector.crt`, '--key', `${pki}/collector.key`], { stdio: 'ignore' });
    cleanups.push(() => collector.kill('SIGKILL'));
    mkdirSync(join(dir.path, 'b1'));
    const b1 = new DaemonProcess(netns, join(dir.path, 'b1', 'history.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', url, '--board', 'b1',
      '--forward-ca', `${pki}/ca.crt`, '--forward-cert', `${pki}/b1.crt`, '--forward-key', `${pki}/b1.key`]);
    cleanups.push(() => b1.kill());
    await b1.waitForLog('Forwarding: connected to the broker');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 100);
    await waitFor(() => collectedCount(fleetDb) === 100, 30_000, 'the events over TLS');

    // Without a client certificate: refused by the broker, said once, retried; the daemon lives on.
    mkdirSync(join(dir.path, 'b2'));
    const b2 = new DaemonProcess(netns, join(dir.path, 'b2', 'history.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', url, '--board', 'b2', '--forward-ca', `${pki}/ca.crt`]);
    cleanups.push(() => b2.kill());
    await b2.waitForLog('hotplugd started');
    await waitFor(() => b2.logs.some((l) => /^Forwarding: .*; retrying$/.test(String(l.msg))), 20_000, 'the refusal logged');
    await new Promise((resolve) => setTimeout(resolve, 2500)); // several retries
    expect(b2.child.exitCode).toBeNull();
    expect(b2.logs.filter((l) => /^Forwarding: .*; retrying$/.test(String(l.msg))).length).toBe(1); // said once, not per retry
    expect((await b2.cli(netns, 'status')).stdout).toMatch(/forwarding: not connected, .*last error: /);
  }, 60_000);

  it('with a username and password from a file; a wrong password is logged and retried', async () => {
    const netns = new Netns('fleetpw');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('fleetpw');
    cleanups.push(() => dir.remove());
    const passwords = join(dir.path, 'passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', passwords, 'board1', 's3cret pass']);
    const port = 18830 + Math.floor(Math.random() * 1000);
    const broker = new Mosquitto(netns, join(dir.path, 'broker'), { persistence: false, port, extra: [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwords}`] });
    cleanups.push(() => broker.stop());
    await broker.start();
    writeFileSync(join(dir.path, 'good.cred'), 'board1\ns3cret pass\n', { mode: 0o600 });
    writeFileSync(join(dir.path, 'bad.cred'), 'board1\nwrong\n', { mode: 0o600 });
    for (const [name, file, ok] of [['good', 'good.cred', true], ['bad', 'bad.cred', false]] as const) {
      mkdirSync(join(dir.path, name));
      const daemon = new DaemonProcess(netns, join(dir.path, name, 'history.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', broker.url, '--board', name, '--forward-credentials', join(dir.path, file)]);
      cleanups.push(() => daemon.kill());
      await daemon.waitForLog('hotplugd started');
      if (ok) await daemon.waitForLog('Forwarding: connected to the broker');
      else {
        await waitFor(() => daemon.logs.some((l) => /Not authorized|Bad User Name or Password/i.test(String(l.msg))), 20_000, 'the refusal logged');
        expect(daemon.child.exitCode).toBeNull();
      }
      // The password never shows in the process list.
      expect(execFileSync('ps', ['-o', 'args=', '-p', String(daemon.child.pid)], { encoding: 'utf8' })).not.toContain('s3cret');
    }
  }, 60_000);
});
