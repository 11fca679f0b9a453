// `hotplugd broker-setup`: a Mosquitto setup where each board has its own certificate and may
// speak only for itself (fleet/broker-setup.ts).
import { readFileSync } from 'node:fs';
import { HotplugError } from '../errors.js';
import { DEFAULT_FORWARD_PREFIX } from '../fleet/broker.js';
import { setupProblem, writeBrokerSetup } from '../fleet/broker-setup.js';
import { parseCommandArgs, usageError, type Command } from './args.js';
import { printable, writeLine } from './output.js';

const usage = `Usage: hotplugd broker-setup --boards FILE --collector NAME --host HOST --out DIR [options]

Makes what a Mosquitto broker needs so that boards cannot speak for each other:
a CA, the broker's certificate, a certificate per board (its CN is the board
name) and per collector, an ACL and a mosquitto.conf. A board may publish only
PREFIX/<its name>/events and /status and read only its own /ack and /collected;
collectors read every board and write the marks. Run it again with more boards:
the CA and the certificates made before are kept.

Options:
  --boards FILE       board names, one per line (# starts a comment)
  --collector NAME    a collector's name (repeat for several)
  --host HOST         the broker's host name or IP address, as boards reach it
  --out DIR           where the files go (created, mode 700)
  --port N            the broker's TLS port (default: 8883)
  --topic PREFIX      the topic prefix boards use (default: hotplugd)
  -h, --help          show this help

Then, on each board:
  hotplugd daemon --forward mqtts://HOST:PORT --board NAME \\
    --forward-ca ca.crt --forward-cert boards/NAME.crt --forward-key boards/NAME.key
and the collector:
  hotplugd collect --broker mqtts://HOST:PORT --db ... \\
    --ca ca.crt --cert collectors/NAME.crt --key collectors/NAME.key`;

export const brokerSetupCommand: Command = {
  name: 'broker-setup',
  usage,
  async run(argv) {
    const values = parseCommandArgs('broker-setup', usage, argv, {
      boards: { type: 'string' }, collector: { type: 'string', multiple: true }, host: { type: 'string' }, out: { type: 'string' },
      port: { type: 'string' }, topic: { type: 'string' },
    });
    if (values === null) return 0;
    for (const required of ['boards', 'host', 'out'] as const) if (values[required] === undefined) throw usageError('broker-setup', `--${required} is required`);
    const port = Number(values.port ?? '8883');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError('broker-setup', `--port expects a port number; got ${JSON.stringify(values.port)}`);
    let text: string;
    try {
      text = readFileSync(values.boards!, 'utf8');
    } catch (error) {
      throw new HotplugError('EUSAGE', `broker-setup: cannot read ${values.boards}: ${(error as Error).message}`, { cause: error });
    }
    const boards = text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    const setup = { prefix: values.topic ?? DEFAULT_FORWARD_PREFIX, boards, collectors: values.collector ?? [], host: values.host!, port };
    const problem = setupProblem(setup);
    if (problem !== undefined) throw usageError('broker-setup', problem);
    const files = writeBrokerSetup(setup, values.out!);
    await writeLine(printable(`Wrote ${files.length} files to ${values.out}: ca.crt, server.crt, acl, mosquitto.conf, ${boards.length} board and ${setup.collectors.length} collector certificates.`));
    return 0;
  },
};
