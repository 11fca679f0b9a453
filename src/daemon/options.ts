// What a daemon is started with: paths, roots, limits and switches (the command line's
// options, see cli/daemon.ts), and the defaults of the limits.
import type { Logger } from '../log.js';
import type { RetentionLimits } from '../history/retention.js';
import type { Accounts } from '../os/accounts.js';
import type { ControlLimits } from '../control/server.js';
import type { ForwardOptions } from '../fleet/forward.js';

export interface DaemonOptions {
  dbPath: string;
  rulesDirs: string[];
  /** udev's runtime directory to write the device database in (/run/udev), or undefined for none. */
  udevDb?: string;
  sysfsRoot: string;
  coldplug: boolean;
  logger: Logger;
  receiveBufferBytes?: number;
  /** Listen to NETLINK_ROUTE for link and address changes (default true; --no-links). */
  links?: boolean;
  linkReceiveBufferBytes?: number;
  /** Events held (queued or running) before the daemon stops reading the socket. */
  queueCapacity?: number;
  /** Events handled at once (those with programs overlap; the rest finish on the spot). */
  maxEvents?: number;
  /** The time budget of one event, its programs included (udev's event timeout). */
  eventTimeoutMs?: number;
  /** The control socket; none when undefined. */
  controlPath?: string;
  /** Group (gid) allowed the read-only control commands. */
  controlGroup?: number | undefined;
  /** Subscribers at once (default 128). */
  maxSubscribers?: number | undefined;
  /** Control connections open at once, in total and per uid. */
  controlLimits?: Partial<ControlLimits> | undefined;
  /** Where device nodes and symlinks live (`/dev`). */
  devRoot?: string;
  /** Evaluate and log what would be done, but do nothing. */
  dryRun?: boolean;
  /** Programs from rules running at once (default 16). */
  maxPrograms?: number;
  /** The modprobe program (default: found in /sbin, /usr/sbin, ...). */
  modprobe?: string;
  /** For programs whose rule sets no timeout. */
  programTimeoutMs?: number | undefined;
  /** Reload rules when a rule directory changes (default true). */
  watchRules?: boolean;
  /** Where parsed YAML rule files are kept between starts (frontends/rules-cache.ts); none when undefined. */
  rulesCacheDir?: string;
  /** Pass processed events on to libudev (group 2) and libudev-zero (group 4) listeners (default true). */
  broadcast?: boolean;
  /** Asked over the control socket to exit: the owner should stop the daemon. */
  onExitRequest?: () => void;
  accounts?: Accounts;
  /** Forward the history to an MQTT broker (--forward). */
  forward?: ForwardOptions | undefined;
  /** History retention (default: 90 days or 200 MiB). */
  retention?: RetentionLimits;
}

export const DEFAULT_QUEUE_CAPACITY = 8192;
export const DEFAULT_MAX_EVENTS = 64;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
