// The daemon: kernel socket → scheduler (ordered per device) → worker (rules, actions,
// history row) → listeners (subscribers, libudev broadcast, waiters, metrics).
// Every step of handling one event is isolated: one bad event never stops the daemon.
import type { HistoryDb } from '../history/db.js';
import { processedRecord, type ProcessedRecord } from '../history/store.js';
import { DEFAULT_RETENTION, type RetentionLimits } from '../history/retention.js';
import type { Logger } from '../log.js';
import { KernelUeventSource, countMalformed } from '../uevent/source.js';
import { Sysfs } from '../uevent/sysfs.js';
import { AncestorCache } from '../uevent/ancestors.js';
import type { Uevent } from '../uevent/event.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../uevent/netlink.js';
import { ActionExecutor } from '../actions/execute.js';
import { ProgramPool, killRunningPrograms } from '../actions/run.js';
import { loadAccounts, type Accounts } from '../rules/accounts.js';
import { machineView } from '../rules/system-view.js';
import { UdevDatabase } from '../udevdb/database.js';
import { Broadcaster } from './broadcaster.js';
import { controlCommands } from './control-commands.js';
import { ControlServer } from './control.js';
import { LiveRules, type ReloadOutcome } from './live-rules.js';
import { RuleMetrics } from './metrics.js';
import { acquireLock } from './native.js';
import { SystemdNotifier } from './notify.js';
import { preloadPrograms } from '../actions/run.js';
import { coldplug } from './coldplug.js';
import { DeviceRegistry } from './registry.js';
import { EventScheduler } from './scheduler.js';
import { Intake } from './intake.js';
import { SubscriberHub } from './subscribers.js';
import { DeviceWaiters } from './waiters.js';
import { HistoryKeeper } from './history-keeper.js';
import { DEFAULT_EVENT_TIMEOUT_MS, EventWorker, type ProcessedEvent, type ProcessedListener } from './worker.js';

export interface DaemonOptions {
  dbPath: string;
  rulesDirs: string[];
  /** udev's runtime directory to write the device database in (/run/udev), or undefined for none. */
  udevDb?: string;
  sysfsRoot: string;
  coldplug: boolean;
  logger: Logger;
  receiveBufferBytes?: number;
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
  /** Pass processed events on to libudev (group 2) and libudev-zero (group 4) listeners (default true). */
  broadcast?: boolean;
  /** Asked over the control socket to exit: the owner should stop the daemon. */
  onExitRequest?: () => void;
  accounts?: Accounts;
  /** History retention (default: 90 days or 200 MiB). */
  retention?: RetentionLimits;
}

export const DEFAULT_QUEUE_CAPACITY = 8192;
export const DEFAULT_MAX_EVENTS = 64;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const STATUS_INTERVAL_MS = 5_000;

export type { ProcessedEvent, ProcessedListener };

export class Daemon {
  readonly startedAt = Date.now();
  /** Times the queue filled and reading the socket was paused. */
  readPauses = 0;
  readonly metrics = new RuleMetrics();
  readonly subscribers: SubscriberHub;
  readonly waiters: DeviceWaiters;
  readonly notifier: SystemdNotifier;
  #options: DaemonOptions;
  #log: Logger;
  #sysfs: Sysfs;
  #history: HistoryKeeper;
  #source: KernelUeventSource | undefined;
  #broadcaster: Broadcaster | undefined;
  #scheduler: EventScheduler<Uevent>;
  #registry = new DeviceRegistry();
  #rules: LiveRules;
  #executor: ActionExecutor;
  #worker: EventWorker;
  #control: ControlServer | undefined;
  #intake: Intake;
  #statusTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #stopped = false;
  /** Resolves once the coldplug events are queued (right after READY). */
  #coldplugged: Promise<void> = Promise.resolve();
  /** Events recorded without processing because the daemon stopped first. */
  unprocessedAtStop = 0;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#log = options.logger;
    // One writer per database: event ids are handed out here, not by SQLite.
    acquireLock(`${options.dbPath}.lock`, options.dbPath);
    this.#sysfs = new Sysfs(options.sysfsRoot);
    this.notifier = new SystemdNotifier(options.logger);
    this.subscribers = new SubscriberHub(options.logger);
    this.#executor = new ActionExecutor({
      devRoot: options.devRoot ?? '/dev',
      sysfs: this.#sysfs,
      pool: new ProgramPool(options.maxPrograms),
      ...(options.programTimeoutMs ? { programTimeoutMs: options.programTimeoutMs } : {}),
      ...(options.modprobe ? { modprobe: options.modprobe } : {}),
    });
    this.#rules = new LiveRules(options.rulesDirs, options.logger, options.accounts);
    this.#history = new HistoryKeeper({ path: options.dbPath, log: options.logger, sysfs: this.#sysfs, retention: options.retention ?? DEFAULT_RETENTION });
    this.#worker = new EventWorker({
      sysfs: this.#sysfs,
      sysfsRoot: options.sysfsRoot,
      devRoot: options.devRoot ?? '/dev',
      dryRun: options.dryRun ?? false,
      ancestors: new AncestorCache(this.#sysfs),
      rules: this.#rules,
      executor: this.#executor,
      writer: this.#history.writer,
      identities: this.#history.identities,
      registry: this.#registry,
      log: this.#log,
      eventTimeoutMs: options.eventTimeoutMs ?? DEFAULT_EVENT_TIMEOUT_MS,
      canRecord: () => !this.#stopped,
      udevDb: options.udevDb === undefined ? undefined : new UdevDatabase(options.udevDb),
      system: machineView(options.sysfsRoot),
      accounts: options.accounts ?? loadAccounts(),
    });
    this.#scheduler = new EventScheduler<Uevent>(
      { capacity: options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY, maxRunning: options.maxEvents ?? DEFAULT_MAX_EVENTS },
      {
        handle: (event) => this.#worker.handle(event),
        onFull: () => {
          this.readPauses++;
          this.#source?.pause();
        },
        onRoom: () => this.#source?.resume(),
        onIdle: () => this.#intake.resyncIfPending(),
      },
    );
    this.waiters = new DeviceWaiters({
      devRoot: options.devRoot ?? '/dev',
      sysfsRoot: options.sysfsRoot,
      known: (devpath) => this.#registry.has(devpath),
      pending: (devpath) => this.#scheduler.hasPending(devpath),
    });
    this.#intake = new Intake({
      writer: this.#history.writer,
      log: this.#log,
      registry: this.#registry,
      sysfs: this.#sysfs,
      push: (event) => this.#scheduler.push(event),
      queued: () => this.#scheduler.length,
      stopping: () => this.#stopping,
      receiveBufferBytes: () => this.#source?.socket.receiveBufferBytes,
      enobufs: () => this.#source?.counters.enobufs,
    });
    this.#worker.listeners.add((processed) => this.#afterEvent(processed));
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
      unprocessedAtStop: this.unprocessedAtStop,
      queued: this.#scheduler.length,
      running: this.#scheduler.running,
      readPauses: this.readPauses,
      recorded: this.#history.writer.committed,
      recordFailures: this.#history.writer.failedCommits,
      recordsWaiting: this.#history.writer.pending,
      recordsLost: this.#history.writer.lost,
      historyReplaced: this.#history.replaced,
      retentionDeleted: this.#history.retentionDeleted,
      evaluationFailures: this.#worker.evaluationFailures,
      actionsFailed: this.#worker.actionsFailed,
      eventsTimedOut: this.#worker.timedOut,
      programsRunning: this.#executor.pool.running,
      programsWaiting: this.#executor.pool.waiting,
      modprobeRuns: this.#executor.modules.runs,
      jobs: this.#executor.jobs.list().length,
      subscribers: this.subscribers.size,
      subscribersDropped: this.subscribers.dropped,
      broadcastFailures: this.#broadcaster?.failures ?? 0,
      controlRefused: this.#control?.refused ?? 0,
      controlMalformed: this.#control?.malformed ?? 0,
      rulesVersion: this.#rules.version,
      rulesFailedReloads: this.#rules.failedReloads,
    };
  }

  /** What `hotplugd status` shows: uptime, counters, the rule set, and supervised jobs. */
  status() {
    const diagnostics = this.#rules.lastDiagnostics;
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      logLevel: this.#log.level,
      counters: this.counters,
      rules: {
        version: this.#rules.version,
        count: this.#rules.current.rules.length,
        files: this.#rules.current.files.length,
        failedReloads: this.#rules.failedReloads,
        loadErrors: diagnostics.filter((d) => d.severity === 'error').length,
        loadWarnings: diagnostics.filter((d) => d.severity === 'warning').length,
      },
      jobs: this.#executor.jobs.list(),
    };
  }

  /** The rule set events are evaluated against now. */
  get ruleSet() {
    return this.#rules.current;
  }

  get logger(): Logger {
    return this.#log;
  }

  /** Loads the rules again; the running set is kept when the new one has errors. */
  reloadRules(reason: string): ReloadOutcome {
    this.notifier.reloading();
    const outcome = this.#rules.reload(reason);
    this.notifier.reloaded(this.#statusLine());
    return outcome;
  }

  /**
   * Resolves true once every event the kernel has sent so far is processed (read from
   * the socket, rules and programs done), false after `timeoutMs`.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    await this.#coldplugged;
    for (;;) {
      this.#source?.socket.readNow();
      if (this.#scheduler.length === 0) return true;
      if (!(await this.#scheduler.idle(Math.max(0, deadline - Date.now())))) return false;
    }
  }

  /** Commits what is waiting and returns the newest recorded event id (a replay cursor). */
  commitHistory(): number {
    this.#history.writer.flush();
    return this.#history.writer.lastEventId;
  }

  get historyDb(): HistoryDb {
    return this.#history.db;
  }

  /** Asks the owner to stop (the control socket's `exit`). */
  requestExit(): void {
    this.#options.onExitRequest?.();
  }

  /**
   * Loads the rules (returning the outcome without starting when they have errors), opens
   * the control socket and binds the kernel socket, then tells systemd READY=1. Coldplug
   * follows at once (see coldplug.ts); the kernel socket is read once it is queued, and
   * "hotplugd started" is logged then.
   */
  async start(): Promise<ReloadOutcome> {
    const log = this.#log;
    const rules = this.#rules.loadInitial();
    if (rules.diagnostics.some((d) => d.severity === 'error')) return rules;
    if (this.#options.controlPath !== undefined) {
      this.#control = new ControlServer(this.#options.controlPath, controlCommands(this), { readGroup: this.#options.controlGroup, log });
      await this.#control.listen();
    }
    if (this.#options.watchRules !== false) this.#rules.watch();
    if (!this.#options.dryRun) this.#executor.prepare();
    this.#source = new KernelUeventSource(
      {
        onEvent: (event) => this.#intake.accept(event),
        onReject: (rejection) => this.#intake.logRejection(rejection),
        onOverflow: (reports) => this.#intake.onOverflow(reports),
        onError: (error) => log.error({ err: error }, `Failed to read the kernel uevent socket: ${error.message}`),
        room: () => this.#scheduler.capacity - this.#scheduler.length,
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
    if (this.#options.broadcast !== false && !this.#options.dryRun) this.#broadcaster = new Broadcaster(log);

    this.#history.startRetention();
    this.notifier.ready(this.#statusLine());
    this.#coldplugged = new Promise((resolve) => setImmediate(() => {
      const coldplugged = coldplug({
        sysfs: this.#sysfs,
        registry: this.#registry,
        log,
        enabled: Boolean(this.#options.coldplug),
        push: (event) => this.#scheduler.push(event),
        idle: () => this.#scheduler.idle(),
        stopping: () => this.#stopping,
      });
      if (this.#scheduler.length < this.#scheduler.capacity) socket.resume();
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
      if (!this.#options.dryRun) preloadPrograms();
      resolve();
    }));
    if (this.notifier.enabled) {
      this.#statusTimer = setInterval(() => this.notifier.status(this.#statusLine()), STATUS_INTERVAL_MS);
      this.#statusTimer.unref();
    }
    return rules;
  }

  /**
   * Stops reading and processes what was accepted, up to `timeoutMs`. Events that have
   * not started by then are recorded unprocessed and running programs are killed, so
   * every accepted event is in the history when this resolves.
   */
  async stopGracefully(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.notifier.stopping();
    await this.#coldplugged;
    this.#source?.close();
    this.#rules.close();
    if (!(await this.#scheduler.idle(timeoutMs))) {
      const queued = this.#scheduler.takeQueued();
      for (const event of queued) this.#recordUnprocessed(event);
      this.unprocessedAtStop = queued.length;
      const killed = killRunningPrograms();
      this.#log.warn({ unprocessed: queued.length, killed, timeoutMs }, 'Stop timeout: events not started were recorded unprocessed; running programs were killed');
      await this.#scheduler.idle(3000);
    }
    await this.#executor.jobs.stopAll();
    this.stop();
  }

  /** Stops at once: kills running programs, commits what was recorded, closes the database. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopping = true;
    clearInterval(this.#statusTimer);
    this.#source?.close();
    this.#broadcaster?.close();
    this.#rules.close();
    this.#control?.close();
    this.subscribers.closeAll();
    this.waiters.cancelAll();
    for (const event of this.#scheduler.takeQueued()) this.#recordUnprocessed(event);
    killRunningPrograms();
    void this.#executor.jobs.stopAll(); // signals them now; stopGracefully waits for them
    this.#stopped = true;
    this.#history.close();
    this.#log.info({ counters: this.counters, uptimeMs: Date.now() - this.startedAt }, 'hotplugd stopped');
  }

  #recordUnprocessed(event: Uevent): void {
    this.#history.writer.recordEvent(event, { note: 'not processed: the daemon stopped first', device: this.#history.identities.of(event) });
  }

  #afterEvent(processed: ProcessedEvent): void {
    this.metrics.observe(processed.rules, processed.actions);
    let record: ProcessedRecord | undefined;
    if (this.subscribers.size > 0) {
      record = processedRecord(processed.id, processed.event, processed.evaluation?.plan, processed.rules);
      this.subscribers.publish(record);
    }
    this.#broadcaster?.send(processed.event, processed.evaluation?.plan);
    this.waiters.check();
  }

  #statusLine(): string {
    const c = this.counters;
    return `${c.processed} events processed, ${c.queued} queued, ${c.actionsFailed} actions failed, rules v${c.rulesVersion}`;
  }
}
