import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectBroker } from './broker.js';

// mqtt-packet as mqtt.js loads it: the switch of its packet-id buffer cache.
const mqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt'))('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };

describe('connectBroker', () => {
  it('opens a client that never builds the 65,536-buffer packet-id cache (~11 MiB of a board)', async () => {
    const client = await connectBroker('mqtt://127.0.0.1:9', {}, { reconnectPeriod: 0 });
    client.on('error', () => {});
    try {
      expect(client.options.writeCache).toBe(false);
      expect(mqttPacket.writeToStream.cacheNumbers).toBe(false);
    } finally {
      client.end(true);
    }
  });

  it('passes the caller\'s options and the secrets read from files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-broker-'));
    const credentials = join(dir, 'mqtt.cred');
    writeFileSync(credentials, 'board-7\ns3cret\n');
    const client = await connectBroker('mqtt://127.0.0.1:9', { credentialsFile: credentials }, { reconnectPeriod: 0, clientId: 'board-7' });
    client.on('error', () => {});
    try {
      expect(client.options).toMatchObject({ clientId: 'board-7', username: 'board-7', password: 's3cret', writeCache: false });
    } finally {
      client.end(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
