// The daemon: kernel socket → queue → handle (rules, registry, history, subscribers).
// Every step of handling one event is isolated: one bad event never stops the daemon.
import { openHistoryDb, type HistoryDb } from '../history/db.js';
import { HistoryWriter } from '../history/store.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { KernelUeventSource, countMalformed, type Rejection } from '../uevent/source.js';
import { Sysfs } from '../uevent/sysfs.js';
import { AncestorCache } from '../uevent/ancestors.js';
import { EventWorker, type ProcessedListener } from './worker.js';
import type { Uevent } from '../uevent/event.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../uevent/netlink.js';
import { ActionExecutor } from '../actions/execute.js';
import { ProgramPool, killRunningPrograms } from '../actions/run.js';
import type { Accounts } from '../rules/accounts.js';
import { ControlServer } from './control.js';
import { LiveRules, type ReloadOutcome } from './live-rules.js';
import { EventQueue } from './queue.js';
import { DeviceRegistry } from './registry.js';
import { SeqnumTracker, type SeqnumGap } from './seqnum.js';

export interface DaemonOptions {
  dbPath: string;
  rulesDirs: string[];
  sysfsRoot: string;
  coldplug: boolean;
  logger: Logger;
  receiveBufferBytes?: number;
  /** Events held in memory before the daemon stops reading the socket. */
  queueCapacity?: number;
  /** The control socket; none when undefined. */
  controlPath?: string;
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
  accounts?: Accounts;
}

export const DEFAULT_QUEUE_CAPACITY = 8192;
export const DEFAULT_STOP_GRACE_MS = 5000;
const REJECT_LOG_INTERVAL_MS = 10_000;


export type { ProcessedListener };

export class Daemon {
  readonly startedAt = Date.now();
  /** Times the queue filled and reading the socket was paused. */
  readPauses = 0;
  #options: DaemonOptions;
  #log: Logger;
  #sysfs: Sysfs;
  #db: HistoryDb;
  #writer: HistoryWriter;
  #source: KernelUeventSource | undefined;
  #queue: EventQueue<Uevent>;
  #registry = new DeviceRegistry();
  #rules: LiveRules;
  #executor: ActionExecutor;
  #worker: EventWorker;
  #control: ControlServer | undefined;
  #seqnums = new SeqnumTracker();
  #overflowReports = 0;
  #overflowSinceLastGap = false;
  #resyncPending = false;
  #lastRejectLog = new Map<string, { at: number; suppressed: number }>();
  #stopped = false;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#sysfs = new Sysfs(options.sysfsRoot);
    this.#executor = new ActionExecutor({
      devRoot: options.devRoot ?? '/dev',
      sysfs: this.#sysfs,
      pool: new ProgramPool(options.maxPrograms),
      ...(options.programTimeoutMs ? { programTimeoutMs: options.programTimeoutMs } : {}),
      ...(options.modprobe ? { modprobe: options.modprobe } : {}),
    });
    this.#rules = new LiveRules(options.rulesDirs, options.logger, options.accounts);
    this.#db = openHistoryDb(options.dbPath);
    this.#writer = new HistoryWriter(this.#db, {
      onError: (error, rows) => this.#log.error({ err: error, rows }, `Failed to record ${rows} history rows: ${error.message}`),
    });
    this.#worker = new EventWorker({
      sysfs: this.#sysfs,
      sysfsRoot: options.sysfsRoot,
      devRoot: options.devRoot ?? '/dev',
      dryRun: options.dryRun ?? false,
      ancestors: new AncestorCache(this.#sysfs),
      rules: this.#rules,
      executor: this.#executor,
      writer: this.#writer,
      registry: this.#registry,
      log: this.#log,
      canRecord: () => !this.#stopped,
    });
    this.#queue = new EventQueue<Uevent>(options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY, {
      handle: (event) => this.#worker.handle(event),
      onFull: () => {
        this.readPauses++;
        this.#source?.pause();
      },
      onRoom: () => this.#source?.resume(),
      onIdle: () => this.#resyncIfPending(),
    });
  }

  get counters() {
    const source = this.#source?.counters;
    return {
      received: source?.received ?? 0,
      accepted: source?.accepted ?? 0,
      forged: source?.forged ?? 0,
      malformed: source ? countMalformed(source) : 0,
      malformedByReason: source?.malformed,
      enobufs: source?.enobufs ?? 0,
      processed: this.#worker.processed,
      queued: this.#queue.length,
      readPauses: this.readPauses,
      recorded: this.#writer.committed,
      recordFailures: this.#writer.failed,
      evaluationFailures: this.#worker.evaluationFailures,
      actionsFailed: this.#worker.actionsFailed,
      importing: this.#worker.importing,
      programsRunning: this.#executor.pool.running,
      programsWaiting: this.#executor.pool.waiting,
      modprobeRuns: this.#executor.modules.runs,
      jobs: this.#executor.jobs.list().length,
      rulesVersion: this.#rules.version,
      rulesFailedReloads: this.#rules.failedReloads,
    };
  }

  /** What `hotplugd status` shows: uptime, counters, the rule set, and supervised jobs. */
  status() {
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      counters: this.counters,
      rules: { version: this.#rules.version, count: this.#rules.current.rules.length, files: this.#rules.current.files.length, failedReloads: this.#rules.failedReloads },
      jobs: this.#executor.jobs.list(),
    };
  }

  /** The rule set events are evaluated against now. */
  get ruleSet() {
    return this.#rules.current;
  }

  /** Loads the rules again; the running set is kept when the new one has errors. */
  reloadRules(reason: string): ReloadOutcome {
    return this.#rules.reload(reason);
  }

  /**
   * Loads the rules (returning the outcome without starting when they have errors), opens
   * the control socket, then listens on the kernel socket before coldplugging, so
   * nothing in between is missed.
   */
  async start(): Promise<ReloadOutcome> {
    const log = this.#log;
    const rules = this.#rules.loadInitial();
    if (rules.diagnostics.some((d) => d.severity === 'error')) return rules;
    if (this.#options.controlPath !== undefined) {
      this.#control = new ControlServer(this.#options.controlPath, {
        reload: () => {
          const outcome = this.reloadRules('control');
          const reply = { rules: outcome.rules, files: outcome.files, version: outcome.version, diagnostics: outcome.diagnostics };
          return outcome.replaced ? { ok: true, ...reply } : { ok: false, error: 'the new rules have errors; the previous rules stay in use', ...reply };
        },
        status: () => ({ ok: true, ...this.status() }),
      });
      await this.#control.listen();
    }
    if (this.#options.watchRules !== false) this.#rules.watch();
    if (!this.#options.dryRun) this.#executor.prepare();
    this.#source = new KernelUeventSource(
      {
        onEvent: (event) => this.#accept(event),
        onReject: (rejection) => this.#logRejection(rejection),
        onOverflow: (reports) => this.#onOverflow(reports),
        onError: (error) => log.error({ err: error }, `Failed to read the kernel uevent socket: ${error.message}`),
        room: () => this.#queue.capacity - this.#queue.length,
      },
      this.#options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES,
    );
    const socket = this.#source.socket;
    const wanted = this.#options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES;
    if (!socket.receiveBufferForced && socket.receiveBufferBytes < wanted) {
      log.warn(
        { receiveBufferBytes: socket.receiveBufferBytes, wanted },
        'Receive buffer is smaller than wanted (SO_RCVBUFFORCE needs CAP_NET_ADMIN): storms may lose events; run as root or raise net.core.rmem_max',
      );
    }

    this.#registry.seed(this.#sysfs);
    let coldplugged = 0;
    if (this.#options.coldplug) {
      const now = Date.now();
      for (const devpath of this.#sysfs.enumerate()) {
        const event = this.#sysfs.synthesizeEvent(devpath, 'add', 'coldplug', now);
        if (event) {
          this.#queue.push(event);
          coldplugged++;
        }
      }
    }
    if (this.#queue.length < this.#queue.capacity) socket.resume();
    log.info(
      {
        db: this.#options.dbPath,
        sysfs: this.#options.sysfsRoot,
        rulesDirs: this.#options.rulesDirs,
        rules: rules.rules,
        receiveBufferBytes: socket.receiveBufferBytes,
        coldplugged,
      },
      'hotplugd started',
    );
    return rules;
  }

  /** Called for each processed event, failures of one listener isolated from the rest. */
  onProcessed(listener: ProcessedListener): () => void {
    this.#worker.listeners.add(listener);
    return () => this.#worker.listeners.delete(listener);
  }

  /**
   * Stops reading and handles what was accepted, then gives running programs up to
   * `graceMs` to finish (their outcomes are recorded) before stop() kills the rest.
   */
  async stopGracefully(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    if (this.#stopped) return;
    this.#source?.close();
    this.#queue.drain();
    const deadline = Date.now() + graceMs;
    // Events waiting for an import program first: finishing them may start more programs.
    const finished = (await this.#worker.idle(graceMs)) && (await this.#executor.pool.idle(Math.max(0, deadline - Date.now())));
    await this.#executor.jobs.stopAll();
    if (!finished) this.#log.warn({ running: this.#executor.pool.running, waiting: this.#executor.pool.waiting, graceMs }, 'Programs still running at stop are killed');
    this.stop();
  }

  /** Stops reading, handles what was accepted, kills running programs, commits, closes the database. */
  stop(): void {
    if (this.#stopped) return;
    this.#source?.close();
    this.#rules.close();
    this.#control?.close();
    this.#queue.drain();
    this.#stopped = true;
    killRunningPrograms();
    void this.#executor.jobs.stopAll(); // signals them now; stopGracefully waits for them
    this.#writer.flush();
    this.#db.close();
    this.#log.info({ counters: this.counters, uptimeMs: Date.now() - this.startedAt }, 'hotplugd stopped');
  }

  #accept(event: Uevent): void {
    const gap = this.#seqnums.observe(event.seqnum);
    if (gap) {
      // The kernel reports ENOBUFS before handing over what it had buffered, so the
      // jump shows only after those: an overflow explains the next gap, not the next event.
      this.#onGap(gap, this.#overflowSinceLastGap);
      this.#overflowSinceLastGap = false;
    }
    this.#queue.push(event);
  }

  #onGap(gap: SeqnumGap, duringOverflow: boolean): void {
    // Other network namespaces' events also leave gaps; only an overflow means loss.
    this.#writer.recordIncident({ kind: 'seqnum-gap', at: Date.now(), detail: { ...gap, duringOverflow } });
    if (duringOverflow) this.#log.warn(gap, `Missed ${gap.missed} kernel events (SEQNUM ${gap.after + 1}..${gap.before - 1})`);
    else this.#log.debug(gap, 'SEQNUM gap (events for other network namespaces, or lost)');
  }

  #onOverflow(reports: number): void {
    this.#overflowReports += reports;
    this.#overflowSinceLastGap = true;
    if (!this.#resyncPending) {
      this.#log.warn(
        { receiveBufferBytes: this.#source?.socket.receiveBufferBytes, enobufs: this.#source?.counters.enobufs },
        'Kernel events were lost (ENOBUFS: receive buffer full); resyncing from sysfs. To avoid it, raise --receive-buffer or run as root',
      );
    }
    this.#resyncPending = true;
    // A queue that is already empty will not report idle again on its own.
    if (this.#queue.length === 0) setImmediate(() => this.#resyncIfPending());
  }

  #resyncIfPending(): void {
    if (!this.#resyncPending || this.#stopped) return;
    this.#resyncPending = false;
    const reports = this.#overflowReports;
    this.#overflowReports = 0;
    let events: Uevent[];
    try {
      events = this.#registry.diff(this.#sysfs);
    } catch (error) {
      this.#log.error({ err: error }, `Failed to resync from sysfs: ${describeError(error)}`);
      return;
    }
    const added = events.filter((e) => e.action === 'add').length;
    this.#writer.recordIncident({
      kind: 'overflow',
      at: Date.now(),
      detail: { enobufsReports: reports, resyncAdded: added, resyncRemoved: events.length - added },
    });
    this.#log.warn({ added, removed: events.length - added }, 'Resynced from sysfs after lost events');
    for (const event of events) this.#queue.push(event);
  }

  #logRejection(rejection: Rejection): void {
    // One line per reason per interval: a flood of forged datagrams must not flood the log.
    const now = Date.now();
    const last = this.#lastRejectLog.get(rejection.reason);
    if (last && now - last.at < REJECT_LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    this.#lastRejectLog.set(rejection.reason, { at: now, suppressed: 0 });
    this.#log.warn(
      { reason: rejection.reason, senderPort: rejection.senderPort, suppressedSinceLast: last?.suppressed ?? 0 },
      `Dropped a datagram: ${rejection.detail}`,
    );
  }
}
