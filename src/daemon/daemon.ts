// The daemon: wires the stages of the pipeline (pipeline.ts) to the kernel socket, the
// history, the control socket and systemd, and starts, stops and reloads them. Events do
// not pass through here: each stage hands its output to the next.
import { mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { HistoryDb } from '../history/db.js';
import { DEV_ROOT } from '../defaults.js';
import { DEFAULT_RETENTION } from '../history/retention.js';
import type { Logger } from '../log.js';
import { Sysfs } from '../uevent/sysfs.js';
import { AncestorCache } from '../uevent/ancestors.js';
import { ActionExecutor } from '../actions/execute.js';
import { ProgramPool, killRunningPrograms, preloadPrograms } from '../actions/run.js';
import { loadAccounts } from '../rules/accounts.js';
import { machineView } from '../rules/system-view.js';
import { reportLinkFileProblems } from '../builtins/link-files.js';
import { UdevDatabase } from '../udevdb/database.js';
import { Broadcaster } from './broadcaster.js';
import { controlCommands, type ControlTarget } from './control-commands.js';
import { ControlServer } from './control.js';
import { UdevControlServer, UdevQueueFlag } from './udev-control.js';
import { DEFAULT_MAX_EVENTS, DEFAULT_QUEUE_CAPACITY, DEFAULT_STOP_TIMEOUT_MS, type DaemonOptions } from './options.js';
export type { DaemonOptions } from './options.js';
import { LiveRules, type ReloadOutcome } from './live-rules.js';
import { memoryMiB, RuleMetrics } from './metrics.js';
import { acquireLock, hypervisorSignature } from './native.js';
import { SystemdNotifier } from './notify.js';
import { coldplug } from './coldplug.js';
import { DeviceRegistry } from './registry.js';
import { Pipeline } from './pipeline.js';
import { SubscriberHub, type SubscriptionFilter } from './subscribers.js';
import { DeviceWaiters, type WaitTarget } from './waiters.js';
import { HistoryKeeper } from './history-keeper.js';
import { KernelSources } from './sources.js';
import { Forwarder } from './forwarder.js';
import { forgetOtherTargets } from '../history/outbox.js';
import { DEFAULT_EVENT_TIMEOUT_MS } from './worker.js';

const STATUS_INTERVAL_MS = 5_000;

export class Daemon implements ControlTarget {
  readonly startedAt = Date.now();
  readonly metrics = new RuleMetrics();
  readonly subscribers: SubscriberHub;
  readonly waiters: DeviceWaiters;
  readonly notifier: SystemdNotifier;
  #options: DaemonOptions;
  #log: Logger;
  #sysfs: Sysfs;
  #history: HistoryKeeper;
  #sources: KernelSources;
  #broadcaster: Broadcaster | undefined;
  #registry = new DeviceRegistry();
  #rules: LiveRules;
  #executor: ActionExecutor;
  #pipeline: Pipeline;
  #control: ControlServer | undefined;
  #udevControl: UdevControlServer | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #forwarder: Forwarder | undefined;
  #stopping = false;
  #stopped = false;
  /** Resolves once the coldplug events are queued (right after READY). */
  #coldplugged: Promise<void> = Promise.resolve();
  /** Events recorded without processing because the daemon stopped first. */
  unprocessedAtStop = 0;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#log = options.logger;
    // One writer per database (ids are handed out here); the lock's directory may be new.
    mkdirSync(dirname(options.dbPath), { recursive: true, mode: 0o755 });
    acquireLock(`${options.dbPath}.lock`, options.dbPath);
    const devRoot = options.devRoot ?? DEV_ROOT;
    this.#sysfs = new Sysfs(options.sysfsRoot);
    this.notifier = new SystemdNotifier(options.logger);
    this.subscribers = new SubscriberHub(options.logger, { maxSubscribers: options.maxSubscribers });
    reportLinkFileProblems((problems) => options.logger.warn({ problems }, `systemd .link files: ${problems.join('; ')}`));
    this.#executor = new ActionExecutor({
      devRoot,
      sysfs: this.#sysfs,
      pool: new ProgramPool(options.maxPrograms),
      ...(options.programTimeoutMs ? { programTimeoutMs: options.programTimeoutMs } : {}),
      ...(options.modprobe ? { modprobe: options.modprobe } : {}),
    });
    this.#rules = new LiveRules(options.rulesDirs, options.logger, options.accounts, options.rulesCacheDir);
    this.#history = new HistoryKeeper({ path: options.dbPath, log: options.logger, sysfs: this.#sysfs, retention: options.retention ?? DEFAULT_RETENTION });
    this.waiters = new DeviceWaiters({
      devRoot,
      sysfsRoot: options.sysfsRoot,
      known: (devpath) => this.#registry.has(devpath),
      pending: (devpath) => this.#pipeline.scheduler.hasPending(devpath),
    });
    this.#pipeline = new Pipeline({
      worker: {
        sysfs: this.#sysfs,
        devRoot,
        dryRun: options.dryRun ?? false,
        ancestors: new AncestorCache(this.#sysfs),
        rules: () => this.#rules.current,
        executor: this.#executor,
        registry: this.#registry,
        log: this.#log,
        eventTimeoutMs: options.eventTimeoutMs ?? DEFAULT_EVENT_TIMEOUT_MS,
        udevDb: options.udevDb === undefined ? undefined : new UdevDatabase(options.udevDb),
        evaluation: { system: machineView(options.sysfsRoot, undefined, { cpuidSignature: hypervisorSignature }), accounts: options.accounts ?? loadAccounts() },
      },
      recorder: { writer: this.#history.writer, identities: this.#history.identities, log: this.#log, canRecord: () => !this.#stopped },
      publisher: { metrics: this.metrics, subscribers: this.subscribers, waiters: this.waiters, broadcaster: () => this.#broadcaster, log: this.#log },
      executor: this.#executor,
      writer: this.#history.writer,
      registry: this.#registry,
      sysfs: this.#sysfs,
      log: this.#log,
      capacity: options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY,
      maxEvents: options.maxEvents ?? DEFAULT_MAX_EVENTS,
      dryRun: options.dryRun ?? false,
      source: {
        pause: () => this.#sources.pause(),
        resume: () => this.#sources.resume(),
        receiveBufferBytes: () => this.#sources.uevents?.socket.receiveBufferBytes,
        enobufs: () => this.#sources.uevents?.counters.enobufs,
        readNow: () => this.#sources.readNow(),
      },
      stopping: () => this.#stopping,
      queueFlag: options.udevDb === undefined ? undefined : new UdevQueueFlag(join(options.udevDb, 'queue'), options.logger, () => this.commitHistory()),
    });
    // Without forwarding, no cursor of an earlier target keeps retention from deleting.
    if (options.forward) this.#forwarder = new Forwarder(options.forward, () => this.#history.db, options.logger);
    else forgetOtherTargets(this.#history.db, undefined);
    this.#sources = new KernelSources({
      receiveBufferBytes: options.receiveBufferBytes,
      linkReceiveBufferBytes: options.linkReceiveBufferBytes,
      links: options.links !== false,
      log: options.logger,
      intake: () => this.#pipeline.intake,
      room: () => this.#pipeline.scheduler.capacity - this.#pipeline.scheduler.length,
      known: (devpath) => this.#registry.has(devpath) || this.#pipeline.scheduler.hasPending(devpath),
      linkParts: { sysfsRoot: options.sysfsRoot, writer: this.#history.writer, push: (event) => this.#pipeline.enqueue(event) },
    });
  }

  get counters() {
    const pipeline = this.#pipeline.stats();
    return {
      ...this.#sources.counters(),
      processed: pipeline.processed,
      unprocessedAtStop: this.unprocessedAtStop,
      queued: pipeline.queued,
      running: pipeline.running,
      readPauses: pipeline.readPauses,
      eventsRecorded: this.#history.writer.eventsCommitted,
      historyRowsRecorded: this.#history.writer.rowsCommitted,
      recordFailures: this.#history.writer.failedCommits,
      recordsWaiting: this.#history.writer.pending,
      recordsLost: this.#history.writer.lost,
      historyReplaced: this.#history.replaced,
      retentionDeleted: this.#history.retentionDeleted,
      evaluationFailures: pipeline.evaluationFailures,
      actionsFailed: pipeline.actionsFailed,
      eventsTimedOut: pipeline.eventsTimedOut,
      programsRunning: this.#executor.pool.running,
      programsWaiting: this.#executor.pool.waiting,
      modprobeRuns: this.#executor.modules.runs,
      jobs: this.#executor.jobs.list().length,
      subscribers: pipeline.subscribers,
      subscribersDropped: pipeline.subscribersDropped,
      subscriberBytesHeld: pipeline.subscriberBytesHeld,
      broadcastFailures: pipeline.broadcastFailures,
      ...(this.#control?.stats() ?? { controlRefused: 0, controlMalformed: 0 }),
      rulesVersion: this.#rules.version,
      rulesFailedReloads: this.#rules.failedReloads,
      rulesWatchHeldBack: this.#rules.heldBack,
      nodesWatched: this.#pipeline.supervisor.nodes.size,
      watchChanges: this.#pipeline.supervisor.nodes.synthesized,
      watchPartitionRereads: this.#pipeline.supervisor.nodes.rereads,
      debounceWaiting: this.#pipeline.debouncer.waiting,
      debounceFired: this.#pipeline.debouncer.fired,
      debounceCancelled: this.#pipeline.debouncer.cancelled,
      ...this.#forwarder?.stats(),
      udevControlMessages: this.#udevControl?.messages ?? 0,
      udevControlRefused: (this.#udevControl?.refused ?? 0) + (this.#udevControl?.malformed ?? 0),
    };
  }

  /** What `hotplugd status` shows: uptime, counters, the rule set, supervised jobs, and per-rule metrics when asked. */
  status(withRuleMetrics = false) {
    const diagnostics = this.#rules.lastDiagnostics;
    return {
      pid: process.pid,
      uptimeMs: Date.now() - this.startedAt,
      memory: memoryMiB(),
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
      ...(withRuleMetrics ? { ruleMetrics: this.metrics.rows() } : {}),
    };
  }

  reload(): ReloadOutcome {
    return this.reloadRules('control');
  }

  progress() {
    const { processed, queued } = this.#pipeline.stats();
    return { processed, queued };
  }

  wait(target: WaitTarget, timeoutMs: number): Promise<boolean> {
    return this.waiters.wait(target, timeoutMs);
  }

  /** The history db, and a commit that returns the newest recorded event id (a replay cursor). */
  history(): { db: HistoryDb; commit(): number } {
    const writer = this.#history.writer;
    return {
      db: this.#history.db,
      commit: () => {
        writer.flush();
        return writer.lastEventId;
      },
    };
  }

  subscribe(socket: Socket, filter: SubscriptionFilter, greeting: string, replay: { afterId: number; upToId: number } | undefined): void {
    this.subscribers.add(socket, filter, greeting, replay && { db: this.#history.db, ...replay });
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
      this.#sources.readNow();
      if (this.#pipeline.scheduler.length === 0) return true;
      if (!(await this.#pipeline.scheduler.idle(Math.max(0, deadline - Date.now())))) return false;
    }
  }

  /** udev's STOP_EXEC_QUEUE / START_EXEC_QUEUE: events stay queued, or go on. */
  holdEvents(hold: boolean): void {
    this.#pipeline.scheduler.hold(hold);
  }

  get eventsHeld(): boolean {
    return this.#pipeline.scheduler.held;
  }

  /** Commits what the history writer holds (when commits fail, the rows wait and are retried). */
  commitHistory(): void {
    this.#history.writer.flush();
  }

  setMaxEvents(count: number): void {
    this.#pipeline.scheduler.setMaxRunning(count);
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
      this.#control = new ControlServer(this.#options.controlPath, controlCommands(this), { readGroup: this.#options.controlGroup, limits: this.#options.controlLimits, log });
      await this.#control.listen();
    }
    if (this.#options.udevDb !== undefined) {
      this.#udevControl = new UdevControlServer(join(this.#options.udevDb, 'control'), this);
      await this.#udevControl.listen();
    }
    if (this.#options.watchRules !== false) this.#rules.watch();
    if (!this.#options.dryRun) this.#executor.prepare();
    this.#sources.open();
    if (this.#options.broadcast !== false && !this.#options.dryRun) this.#broadcaster = new Broadcaster(log);

    this.#history.startRetention();
    await this.#forwarder?.start();
    this.notifier.ready(this.#statusLine());
    this.#coldplugged = new Promise((resolve) => setImmediate(() => {
      const coldplugged = coldplug({
        sysfs: this.#sysfs,
        registry: this.#registry,
        log,
        enabled: Boolean(this.#options.coldplug),
        push: (event) => this.#pipeline.enqueue(event),
        idle: () => this.#pipeline.scheduler.idle(),
        stopping: () => this.#stopping,
      });
      this.#sources.start(Boolean(this.#options.coldplug), this.#pipeline.scheduler.length < this.#pipeline.scheduler.capacity);
      log.info(
        {
          db: this.#options.dbPath,
          sysfs: this.#options.sysfsRoot,
          rulesDirs: this.#options.rulesDirs,
          rules: rules.rules,
          receiveBufferBytes: this.#sources.uevents?.socket.receiveBufferBytes,
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
    this.#sources.close();
    this.#rules.close();
    if (!(await this.#pipeline.scheduler.idle(timeoutMs))) {
      const queued = this.#pipeline.scheduler.takeQueued();
      for (const event of queued) this.#pipeline.recorder.recordUnprocessed(event);
      this.unprocessedAtStop = queued.length;
      const killed = killRunningPrograms();
      this.#log.warn({ unprocessed: queued.length, killed, timeoutMs }, 'Stop timeout: events not started were recorded unprocessed; running programs were killed');
      await this.#pipeline.scheduler.idle(3000);
    }
    await this.#executor.jobs.stopAll();
    this.commitHistory();
    await this.#forwarder?.stop();
    this.stop();
  }

  /** Stops at once: kills running programs, commits what was recorded, closes the database. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopping = true;
    clearInterval(this.#statusTimer);
    this.#sources.close();
    this.#broadcaster?.close();
    this.#rules.close();
    this.#control?.close();
    this.#udevControl?.close();
    void this.#forwarder?.stop();
    this.#pipeline.supervisor.nodes.close();
    this.#pipeline.debouncer.close();
    this.subscribers.closeAll();
    this.waiters.cancelAll();
    for (const event of this.#pipeline.scheduler.takeQueued()) this.#pipeline.recorder.recordUnprocessed(event);
    killRunningPrograms();
    void this.#executor.jobs.stopAll(); // signals them now; stopGracefully waits for them
    this.#stopped = true;
    this.#history.close();
    this.#log.info({ counters: this.counters, uptimeMs: Date.now() - this.startedAt }, 'hotplugd stopped');
  }

  #statusLine(): string {
    const c = this.counters;
    return `${c.processed} events processed, ${c.queued} queued, ${c.actionsFailed} actions failed, rules v${c.rulesVersion}`;
  }
}
