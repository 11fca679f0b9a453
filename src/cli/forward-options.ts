// `hotplugd daemon --forward URL ...`: the forwarding options, checked before anything starts.
import { existsSync, readFileSync } from 'node:fs';
import { HotplugError } from '../errors.js';
import { boardNameProblem, DEFAULT_FORWARD_PREFIX } from '../fleet/broker.js';
import { defaultBoardName, type ForwardOptions } from '../fleet/forward.js';

export const FORWARD_USAGE = `  --forward URL           forward the history to an MQTT broker: mqtt://HOST[:PORT] or
                          mqtts://HOST[:PORT] (store-and-forward: what the broker did not
                          acknowledge is sent after a reconnect or a restart)
  --forward-topic PREFIX  topics PREFIX/<board>/events and PREFIX/<board>/status
                          (default: ${DEFAULT_FORWARD_PREFIX})
  --board NAME            this board's name in the fleet (default: the hostname)
  --forward-credentials FILE
                          username on the first line, password on the second (never on
                          the command line)
  --forward-ca FILE, --forward-cert FILE, --forward-key FILE
                          TLS: the broker's CA, and this board's certificate and key`;

export const FORWARD_OPTIONS = {
  forward: { type: 'string' },
  'forward-topic': { type: 'string' },
  board: { type: 'string' },
  'forward-credentials': { type: 'string' },
  'forward-ca': { type: 'string' },
  'forward-cert': { type: 'string' },
  'forward-key': { type: 'string' },
} as const;

type Values = Partial<Record<keyof typeof FORWARD_OPTIONS, string>>;

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The forwarding the options ask for, or undefined; a usage error for what cannot work. */
export function forwardOptions(values: Values): ForwardOptions | undefined {
  const fail = (message: string) => new HotplugError('EUSAGE', `hotplugd daemon: ${message}`);
  if (values.forward === undefined) {
    const stray = Object.keys(FORWARD_OPTIONS).filter((key) => key !== 'forward' && values[key as keyof Values] !== undefined);
    if (stray.length > 0) throw fail(`--${stray[0]} goes with --forward`);
    return undefined;
  }
  if (!/^mqtts?:\/\/[^/]+\/?$/.test(values.forward)) throw fail(`--forward expects mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; got ${JSON.stringify(values.forward)}`);
  const board = values.board ?? defaultBoardName();
  const problem = boardNameProblem(board);
  if (problem) throw fail(`--board ${JSON.stringify(board)} cannot be used: ${problem}`);
  const prefix = values['forward-topic'] ?? DEFAULT_FORWARD_PREFIX;
  if (prefix === '' || /[+#\0]/.test(prefix)) throw fail(`--forward-topic ${JSON.stringify(prefix)} cannot be used: it is empty or holds "+", "#" or NUL`);
  for (const key of ['forward-credentials', 'forward-ca', 'forward-cert', 'forward-key'] as const) {
    const file = values[key];
    if (file !== undefined && !existsSync(file)) throw fail(`--${key}: no file ${file}`);
  }
  return {
    url: values.forward,
    prefix,
    board,
    credentialsFile: values['forward-credentials'],
    caFile: values['forward-ca'],
    certFile: values['forward-cert'],
    keyFile: values['forward-key'],
    version: version(),
  };
}
