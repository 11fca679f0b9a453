// What a board's forwarder and the fleet's collector share about reaching an MQTT broker:
// the topic prefix, board names (a topic level), secrets read from files (never from the
// command line), how both open mqtt.js's client, and one way of telling that the broker cannot
// be reached.
import { readFileSync } from 'node:fs';
import type { IClientOptions, MqttClient } from 'mqtt';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

export const DEFAULT_FORWARD_PREFIX = 'hotplugd';

/** Why a board name is refused: it becomes a topic level. */
export function boardNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (/[/+#\0]/.test(name)) return 'it holds "/", "+", "#" or NUL (it is an MQTT topic level)';
  if (Buffer.byteLength(name) > 128) return 'it is longer than 128 bytes';
  return undefined;
}

/** What a board and a collector read from files to reach a broker. */
export interface BrokerSecrets {
  /** The username on its first line, the password on its second. */
  credentialsFile?: string | undefined;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** mqtt.js options from those files. */
function brokerSecrets(s: BrokerSecrets): { username?: string; password?: string; ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const [username = '', password = ''] = s.credentialsFile === undefined ? [] : readFileSync(s.credentialsFile, 'utf8').split('\n');
  return {
    ...(s.credentialsFile === undefined ? {} : { username, password }),
    ...(s.caFile ? { ca: readFileSync(s.caFile) } : {}),
    ...(s.certFile ? { cert: readFileSync(s.certFile) } : {}),
    ...(s.keyFile ? { key: readFileSync(s.keyFile) } : {}),
  };
}

/**
 * mqtt.js's client for `url`, with the secrets and these options. mqtt.js is loaded on first
 * use: a daemon that does not forward never holds it. `writeCache` off: at the first packet
 * mqtt.js would otherwise make a Buffer for each of the 65,536 packet ids (~11 MiB of a
 * board's RSS) to save one two-byte allocation per packet.
 */
export async function connectBroker(url: string, secrets: BrokerSecrets, options: IClientOptions): Promise<MqttClient> {
  const { connect } = await import('mqtt');
  return connect(url, { ...brokerSecrets(secrets), writeCache: false, ...options });
}

/**
 * The last problem reaching the broker, logged once per change of it: a broker down for an
 * hour is one line, not 3,600. Cleared on a connection.
 */
export class BrokerProblems {
  last: string | null = null;
  #log: Logger;
  #what: string;

  constructor(log: Logger, what: string) {
    this.#log = log;
    this.#what = what;
  }

  report(error: unknown): void {
    // One line: OpenSSL's messages end with a newline.
    const message = describeError(error).trim().replace(/\s*\n\s*/g, ' ');
    if (message !== this.last) this.#log.warn({ err: error }, `${this.#what}: ${message}; retrying`);
    this.last = message;
  }

  clear(): void {
    this.last = null;
  }
}
