// `hotplugd collect`: the fleet's collector, and `hotplugd boards`: what it collected.
import { hostname } from 'node:os';
import { Collector } from '../fleet/collect.js';
import { HotplugError } from '../errors.js';
import { isPostgresUrl, openFleetStore } from '../fleet/store.js';
import { createLogger, isLogLevel } from '../log.js';
import { parseCommandArgs, usageError, type Command } from './args.js';
import { localTime, printable, writeLine } from './output.js';

const collectUsage = `Usage: hotplugd collect --broker URL --db PATH [options]

Collect the histories boards forward (hotplugd daemon --forward) into one
database: every event, result and incident of each board stored once, whatever
the broker redelivers. A message is acknowledged only once it is stored, and the
collector keeps a persistent session: stopped or crashed, it loses nothing.

Options:
  --broker URL          mqtt://HOST[:PORT] or mqtts://HOST[:PORT]
  --db PATH|URL         the fleet database: a SQLite file (created if needed)
                        or postgres://USER@HOST/DB; over a unix socket:
                        postgres://USER@/DB?host=/run/postgresql; the password
                        from PGPASSWORD or ~/.pgpass
  --topic PREFIX        topics PREFIX/<board>/events and /status
                        (default: hotplugd)
  --share GROUP         a shared subscription: collectors of one group split the
                        load; they must write one database (PostgreSQL)
  --client-id ID        the collector's session on the broker (default:
                        hotplugd-collector-<hostname>); one per collector
  --connections N       connections that each take messages, stored in
                        parallel (default: 4 with PostgreSQL, 1 with SQLite,
                        whose writes cannot overlap); more than one subscribes
                        as a shared group (--share, or the client id)
  --credentials FILE    username on the first line, password on the second
  --ca FILE, --cert FILE, --key FILE
                        TLS: the broker's CA, this collector's certificate
                        and key
  --log-level LEVEL     (default: info)
  -h, --help            show this help

Stop it with Ctrl-C or SIGTERM: what it received is stored first.`;

export const collectCommand: Command = {
  name: 'collect',
  usage: collectUsage,
  async run(argv) {
    const values = parseCommandArgs('collect', collectUsage, argv, {
      broker: { type: 'string' }, db: { type: 'string' }, topic: { type: 'string' }, share: { type: 'string' },
      'client-id': { type: 'string' }, connections: { type: 'string' }, credentials: { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
      'log-level': { type: 'string' },
    });
    if (values === null) return 0;
    if (values.broker === undefined || !/^mqtts?:\/\/[^/]+\/?$/.test(values.broker)) throw usageError('collect', '--broker expects mqtt://HOST[:PORT] or mqtts://HOST[:PORT]');
    if (values.db === undefined) throw usageError('collect', '--db PATH or --db postgres://... is required');
    const level = values['log-level'] ?? 'info';
    if (!isLogLevel(level)) throw usageError('collect', `--log-level: unknown level ${JSON.stringify(level)}`);
    const log = await createLogger(level);
    const connections = Number(values.connections ?? (isPostgresUrl(values.db) ? '4' : '1'));
    if (!Number.isInteger(connections) || connections < 1 || connections > 16) throw usageError('collect', `--connections expects 1 to 16; got ${JSON.stringify(values.connections)}`);
    const db = await openFleetStore(values.db, { connections, onError: (error) => log.warn({ err: error }, `Collector: the database connection failed: ${error.message}`) });
    const collector = new Collector({
      url: values.broker, prefix: values.topic, share: values.share, clientId: values['client-id'] ?? `hotplugd-collector-${hostname()}`, connections,
      credentialsFile: values.credentials, caFile: values.ca, certFile: values.cert, keyFile: values.key,
    }, db, log);
    await collector.start();
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await collector.stop();
    await db.close();
    log.info({ stored: collector.stored, duplicates: collector.duplicates, refused: collector.refused }, 'Collector stopped');
    return 0;
  },
};

const boardsUsage = `Usage: hotplugd boards --db PATH|URL [--json]

The boards of a collected fleet database: first and last seen, their last status
(online, offline), how many events were collected from each, and how many records
came for ids already held with other content (kept in fleet_conflicts).

Options:
  --db PATH    the fleet database ('hotplugd collect --db': a file or postgres://...)
  --json       one JSON object per board
  -h, --help   show this help`;

export const boardsCommand: Command = {
  name: 'boards',
  usage: boardsUsage,
  async run(argv) {
    const values = parseCommandArgs('boards', boardsUsage, argv, { db: { type: 'string' }, json: { type: 'boolean' } });
    if (values === null) return 0;
    if (values.db === undefined) throw usageError('boards', '--db PATH is required');
    const db = await openFleetStore(values.db, { readonly: true });
    try {
      const boards = await db.boards();
      if (boards.length === 0 && !values.json) process.stderr.write('No boards in this database yet.\n');
      for (const b of boards) {
        if (values.json) await writeLine(JSON.stringify({ ...b, first_seen: new Date(b.first_seen).toISOString(), last_seen: new Date(b.last_seen).toISOString() }));
        else await writeLine(printable(`${b.name}: ${b.status ?? 'no status'}${b.version ? ` (hotplugd ${b.version})` : ''}, ${b.events} events${b.conflicts > 0 ? `, ${b.conflicts} conflicting records (fleet_conflicts)` : ''}, first seen ${localTime(new Date(b.first_seen).toISOString())}, last seen ${localTime(new Date(b.last_seen).toISOString())}`));
      }
    } catch (error) {
      throw new HotplugError('EDB', `hotplugd boards: ${(error as Error).message}`, { cause: error });
    } finally {
      await db.close();
    }
    return 0;
  },
};
