// The daemon: composes the parts in dependency order (history → evaluation context →
// pipeline → the listeners of its output → the control sockets), then starts, stops and
// reloads them. Events do not pass through here: the pipeline (pipeline/pipeline.ts)
// carries each one from the kernel to its subscribers. Its counters are the merge of each
// part's stats().
import { mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { HistoryDb } from '../history/db.js';
import { DEV_ROOT } from '../defaults.js';
import { DEFAULT_RETENTION } from '../history/retention.js';
import { HistoryService } from '../history/service.js';
import { forgetOtherTargets } from '../history/outbox.js';
import type { Logger } from '../log.js';
import { ActionExecutor } from '../actions/execute.js';
import { ProgramPool, killRunningPrograms } from '../actions/run.js';
import { reportLinkFileProblems } from '../builtins/link-files.js';
import { EvaluationContext } from '../engine/context.js';
import { acquireLock } from '../os/system-calls.js';
import { SystemdNotifier } from '../os/notify.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { KernelSources } from '../pipeline/sources.js';
import { DEFAULT_EVENT_TIMEOUT_MS } from '../pipeline/worker.js';
import { controlCommands, type ControlTarget } from '../control/commands.js';
import { ControlServer } from '../control/server.js';
import { memoryMiB, RuleMetrics } from '../control/metrics.js';
import { SubscriberHub, type SubscriptionFilter } from '../control/subscribers.js';
import { DeviceWaiters, type WaitTarget } from '../control/waiters.js';
import { Broadcaster } from '../udev/broadcaster.js';
import { UdevControlServer, UdevQueueFlag } from '../udev/control-socket.js';
import { Forwarder, historyOutbox } from '../fleet/forward.js';
import { LiveRules, type ReloadOutcome } from './live-rules.js';
import { DEFAULT_MAX_EVENTS, DEFAULT_QUEUE_CAPACITY, DEFAULT_STOP_TIMEOUT_MS, type DaemonOptions } from './options.js';
export type { DaemonOptions } from './options.js';

const STATUS_INTERVAL_MS = 5_000;

export class Daemon implements ControlTarget {
  readonly startedAt = Date.now();
  readonly metrics = new RuleMetrics();
  readonly subscribers: SubscriberHub;
  readonly waiters: DeviceWaiters;
  readonly notifier: SystemdNotifier;
  #options: DaemonOptions;
  #log: Logger;
  #history: HistoryService;
  #rules: LiveRules;
  #executor: ActionExecutor;
  #pipeline: Pipeline;
  #broadcaster: Broadcaster | undefined;
  #control: ControlServer | undefined;
  #udevControl: UdevControlServer | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #forwarder: Forwarder | undefined;
  #stopping = false;
  #stopped = false;
  /** Resolves once the coldplug events are queued (right after READY). */
  #coldplugged: Promise<void> = Promise.resolve();

  constructor(options: DaemonOptions) {
    this.#options = options;
    const log = (this.#log = options.logger);
    // One writer per database (ids are handed out here); the lock's directory may be new.
    mkdirSync(dirname(options.dbPath), { recursive: true, mode: 0o755 });
    acquireLock(`${options.dbPath}.lock`, options.dbPath);
    const devRoot = options.devRoot ?? DEV_ROOT;
    const dryRun = options.dryRun ?? false;
    this.notifier = new SystemdNotifier(log);
    reportLinkFileProblems((problems) => log.warn({ problems }, `systemd .link files: ${problems.join('; ')}`));
    const context = new EvaluationContext({ sysfsRoot: options.sysfsRoot, devRoot, databaseDir: options.udevDb, accounts: options.accounts });
    this.#executor = new ActionExecutor({
      devRoot,
      sysfs: context.sysfs,
      pool: new ProgramPool(options.maxPrograms),
      ...(options.programTimeoutMs ? { programTimeoutMs: options.programTimeoutMs } : {}),
      ...(options.modprobe ? { modprobe: options.modprobe } : {}),
    });
    this.#rules = new LiveRules(options.rulesDirs, log, options.accounts, options.rulesCacheDir);
    const history = (this.#history = new HistoryService({ path: options.dbPath, log, sysfs: context.sysfs, retention: options.retention ?? DEFAULT_RETENTION }));
    this.#pipeline = new Pipeline({
      sources: new KernelSources({
        receiveBufferBytes: options.receiveBufferBytes,
        linkReceiveBufferBytes: options.linkReceiveBufferBytes,
        links: options.links !== false,
        sysfsRoot: options.sysfsRoot,
        log,
      }),
      worker: {
        context,
        dryRun,
        rules: () => this.#rules.current,
        executor: this.#executor,
        log,
        eventTimeoutMs: options.eventTimeoutMs ?? DEFAULT_EVENT_TIMEOUT_MS,
      },
      recorder: { writer: history.writer, identities: history.identities, log, canRecord: () => !this.#stopped },
      executor: this.#executor,
      sysfs: context.sysfs,
      log,
      capacity: options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY,
      maxEvents: options.maxEvents ?? DEFAULT_MAX_EVENTS,
      dryRun,
      queueFlag: options.udevDb === undefined ? undefined : new UdevQueueFlag(join(options.udevDb, 'queue'), log, () => {
        this.commitHistory();
        return this.#broadcaster?.drain();
      }),
    });
    history.reportIncidentsTo(
      (incident) => this.#pipeline.reportIncident(incident),
      (recorded) => this.#pipeline.publishIncident(recorded),
    );
    this.subscribers = new SubscriberHub(log, { maxSubscribers: options.maxSubscribers });
    this.waiters = new DeviceWaiters({
      devRoot,
      sysfsRoot: options.sysfsRoot,
      known: (devpath) => this.#pipeline.known(devpath),
      pending: (devpath) => this.#pipeline.pending(devpath),
    });
    // Without forwarding, no cursor of an earlier target keeps retention from deleting.
    if (options.forward) {
      const forwarder = (this.#forwarder = new Forwarder(options.forward, historyOutbox(() => history.db, Forwarder.target(options.forward)), log));
      history.afterCommit(() => forwarder.nudge());
    } else forgetOtherTargets(history.db, undefined);
  }

  get counters() {
    const writer = this.#history.writer;
    return {
      ...this.#pipeline.stats(),
      eventsRecorded: writer.eventsCommitted,
      historyRowsRecorded: writer.rowsCommitted,
      recordFailures: writer.failedCommits,
      recordsWaiting: writer.pending,
      recordsLost: writer.lost,
      historyReplaced: this.#history.replaced,
      retentionDeleted: this.#history.retentionDeleted,
      programsRunning: this.#executor.pool.running,
      programsWaiting: this.#executor.pool.waiting,
      modprobeRuns: this.#executor.modules.runs,
      modulesAnswered: this.#executor.modules.answered,
      modulesInserted: this.#executor.modules.inserted,
      jobs: this.#executor.jobs.list().length,
      ...(this.#control?.stats() ?? { controlRefused: 0, controlMalformed: 0 }),
      rulesVersion: this.#rules.version,
      rulesFailedReloads: this.#rules.failedReloads,
      rulesWatchHeldBack: this.#rules.heldBack,
      ...this.#forwarder?.stats(),
      udevControlMessages: this.#udevControl?.messages ?? 0,
      udevControlRefused: (this.#udevControl?.refused ?? 0) + (this.#udevControl?.malformed ?? 0),
      udevControlConnections: this.#udevControl?.connections ?? 0,
      udevControlTimedOut: this.#udevControl?.timedOut ?? 0,
      udevControlEvicted: this.#udevControl?.evicted ?? 0,
      udevControlBacklogged: this.#udevControl?.backlogged ?? 0,
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
        steppedAside: this.#rules.current.files.filter((f) => f.steppedAside).map((f) => f.path),
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
    return this.#pipeline.progress();
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
    return this.#pipeline.settle(Math.max(0, deadline - Date.now()));
  }

  /** udev's STOP_EXEC_QUEUE / START_EXEC_QUEUE: events stay queued, or go on. */
  holdEvents(hold: boolean): void {
    this.#pipeline.hold(hold);
  }

  get eventsHeld(): boolean {
    return this.#pipeline.held;
  }

  /** Commits what the history writer holds (when commits fail, the rows wait and are retried). */
  commitHistory(): void {
    this.#history.writer.flush();
  }

  setMaxEvents(count: number): void {
    this.#pipeline.setMaxEvents(count);
  }

  /** Asks the owner to stop (the control socket's `exit`). */
  requestExit(): void {
    this.#options.onExitRequest?.();
  }

  /**
   * Loads the rules (returning the outcome without starting when they have errors), opens
   * the control socket and binds the kernel socket, then tells systemd READY=1. Coldplug
   * follows at once (see pipeline/coldplug.ts); the kernel socket is read once it is
   * queued, and "hotplugd started" is logged then.
   */
  async start(): Promise<ReloadOutcome> {
    const log = this.#log;
    const options = this.#options;
    const rules = this.#rules.loadInitial();
    if (rules.diagnostics.some((d) => d.severity === 'error')) return rules;
    if (options.controlPath !== undefined) {
      this.#control = new ControlServer(options.controlPath, controlCommands(this), { readGroup: options.controlGroup, limits: options.controlLimits, log });
      await this.#control.listen();
    }
    if (options.udevDb !== undefined) {
      this.#udevControl = new UdevControlServer(join(options.udevDb, 'control'), this);
      await this.#udevControl.listen();
    }
    if (options.watchRules !== false) this.#rules.watch();
    if (!options.dryRun) this.#executor.prepare();
    this.#pipeline.open();
    if (options.broadcast !== false && !options.dryRun) this.#broadcaster = new Broadcaster(log);
    this.#pipeline.publishTo({ metrics: this.metrics, subscribers: this.subscribers, waiters: this.waiters, broadcaster: this.#broadcaster });
    this.#history.startRetention();
    await this.#forwarder?.start();
    this.notifier.ready(this.#statusLine());
    this.#coldplugged = new Promise((resolve) => setImmediate(() => {
      const coldplugged = this.#stopping ? 0 : this.#pipeline.start(Boolean(options.coldplug));
      log.info(
        { db: options.dbPath, sysfs: options.sysfsRoot, rulesDirs: options.rulesDirs, rules: rules.rules, receiveBufferBytes: this.#pipeline.receiveBufferBytes(), coldplugged },
        'hotplugd started',
      );
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
    this.#rules.close();
    await this.#pipeline.drain(timeoutMs);
    await this.#broadcaster?.drain();
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
    this.#pipeline.close();
    this.#broadcaster?.close();
    this.#rules.close();
    this.#control?.close();
    this.#udevControl?.close();
    void this.#forwarder?.stop();
    this.subscribers.closeAll();
    this.waiters.cancelAll();
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
