// The straight line one event travels once it is read from the kernel:
//   sources (uevent and route sockets) → intake (SEQNUM gaps, overflow resync; link
//   changes from the route socket) → debouncer (a newer event cancels debounced rules
//   waiting on the old state) → scheduler (ordered per device, bounded) → worker (evaluate
//   the rules, act, udev's database) → recorder (history row) → publisher (metrics,
//   subscribers, libudev broadcast, waiters) → supervisor (jobs and units of the device)
//   → debouncer (the event's debounced rules wait their turn, queued again if the state held).
// Incidents (an overflow, a SEQNUM gap) take the same recorder and publisher.
// Each stage has one downstream link, set here and nowhere else. The pipeline owns the
// queue's settle, hold and limits, and the stats of all its stages.
import type { ActionExecutor } from '../actions/execute.js';
import { killRunningPrograms } from '../actions/run.js';
import { describeError } from '../errors.js';
import type { Incident } from '../history/records.js';
import type { Logger } from '../log.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { coldplug } from './coldplug.js';
import { Debouncer } from './debounce.js';
import { Intake } from './intake.js';
import { PresentDevices } from './present-devices.js';
import { Publisher, type PublisherListeners } from './publisher.js';
import { Recorder, type LaterResult, type RecorderParts } from './recorder.js';
import { EventScheduler } from './scheduler.js';
import type { EventSources } from './sources.js';
import { DeviceSupervisor } from './supervisor.js';
import { EventWorker, type Outcome, type WorkerParts } from './worker.js';

export interface PipelineParts {
  /** The kernel's sockets (sources.ts), or a fake in tests. */
  sources: EventSources;
  worker: Omit<WorkerParts, 'present'>;
  recorder: RecorderParts;
  executor: ActionExecutor;
  sysfs: Sysfs;
  log: Logger;
  /** Events queued before reading the sockets pauses. */
  capacity: number;
  /** Events running at once. */
  maxEvents: number;
  dryRun: boolean;
  /** udev's /run/udev/queue, kept present while events are pending (with --udev). */
  queueFlag?: { busy(): void; idle(): void } | undefined;
}

export class Pipeline {
  readonly present = new PresentDevices();
  readonly worker: EventWorker;
  readonly recorder: Recorder;
  readonly publisher: Publisher;
  readonly supervisor: DeviceSupervisor;
  readonly debouncer: Debouncer;
  readonly scheduler: EventScheduler<Uevent>;
  readonly intake: Intake;
  #sources: EventSources;
  #log: Logger;
  #sysfs: Sysfs;
  #dryRun: boolean;
  /** Times the queue filled and reading the sockets was paused. */
  #readPauses = 0;
  #stopping = false;
  /** Events recorded without processing because the pipeline stopped first. */
  #unprocessedAtStop = 0;

  constructor(p: PipelineParts) {
    this.#sources = p.sources;
    this.#log = p.log;
    this.#sysfs = p.sysfs;
    this.#dryRun = p.dryRun;
    this.worker = new EventWorker({ ...p.worker, present: this.present });
    this.recorder = new Recorder(p.recorder);
    this.publisher = new Publisher(p.log);
    const reportLater = (later: LaterResult) => {
      this.recorder.recordLater(later);
      this.publisher.publishLater(later);
    };
    this.supervisor = new DeviceSupervisor(p.executor, p.log, reportLater, p.sysfs.root);
    this.debouncer = new Debouncer({ active: () => p.worker.rules().debounced, push: (event) => this.enqueue(event), report: reportLater, log: p.log });
    const sources = p.sources;
    this.scheduler = new EventScheduler<Uevent>(
      { capacity: p.capacity, maxRunning: p.maxEvents },
      {
        handle: (event) => {
          const outcome = this.worker.handle(event);
          if (!(outcome instanceof Promise)) return this.#finish(outcome);
          return outcome.then((done) => this.#finish(done));
        },
        onFull: () => {
          this.#readPauses++;
          sources.pause();
        },
        onRoom: () => sources.resume(),
        onIdle: () => {
          p.queueFlag?.idle();
          this.intake.resyncIfPending();
        },
        onBusy: () => p.queueFlag?.busy(),
      },
    );
    this.intake = new Intake({
      log: p.log,
      present: this.present,
      sysfs: p.sysfs,
      push: (event) => this.enqueue(event),
      reportIncident: (incident) => this.reportIncident(incident),
      queued: () => this.scheduler.length,
      stopping: () => this.#stopping,
      receiveBufferBytes: () => sources.receiveBufferBytes(),
      enobufs: () => sources.enobufs(),
      readNow: () => sources.readNow(),
    });
  }

  /** Who hears of processed events, later results and incidents (set before start). */
  publishTo(listeners: PublisherListeners): void {
    this.publisher.connect(listeners);
  }

  /** Binds the sources (nothing is read until start). */
  open(): void {
    this.#sources.open({
      intake: this.intake,
      push: (event) => this.enqueue(event),
      reportIncident: (incident) => this.reportIncident(incident),
      room: () => this.scheduler.capacity - this.scheduler.length,
      known: (devpath) => this.present.has(devpath) || this.scheduler.hasPending(devpath),
    });
  }

  /**
   * Seeds the present devices from sysfs and, with `withColdplug`, queues an `add` for each;
   * then starts reading the sources. Returns how many devices were coldplugged.
   */
  start(withColdplug: boolean): number {
    const coldplugged = coldplug({
      sysfs: this.#sysfs,
      present: this.present,
      log: this.#log,
      enabled: withColdplug,
      push: (event) => this.enqueue(event),
      idle: () => this.scheduler.idle(),
      stopping: () => this.#stopping,
    });
    this.#sources.start(withColdplug, this.scheduler.length < this.scheduler.capacity);
    return coldplugged;
  }

  /** Queues an event from any source: uevents, link changes, debounced turns, a resync. */
  enqueue(event: Uevent): void {
    this.debouncer.observe(event);
    this.scheduler.push(event);
  }

  /** Records an incident and tells the subscribers who asked for incidents. */
  reportIncident(incident: Incident): void {
    this.recorder.recordIncident(incident);
    this.publisher.publishIncident(incident);
  }

  /** Tells the subscribers of an incident already in the history (the writer's own: rows it gave up). */
  publishIncident(incident: Incident): void {
    this.publisher.publishIncident(incident);
  }

  /** Resolves true once everything the sources hold now is processed, false after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.#sources.readNow();
      if (this.scheduler.length === 0) return true;
      if (!(await this.scheduler.idle(Math.max(0, deadline - Date.now())))) return false;
    }
  }

  /** udev's STOP_EXEC_QUEUE / START_EXEC_QUEUE: events stay queued, or go on. */
  hold(on: boolean): void {
    this.scheduler.hold(on);
  }

  get held(): boolean {
    return this.scheduler.held;
  }

  /** udev's SET_CHILDREN_MAX. */
  setMaxEvents(count: number): void {
    this.scheduler.setMaxRunning(count);
  }

  /** The device is present as far as processed events tell. */
  known(devpath: string): boolean {
    return this.present.has(devpath);
  }

  /** Events for the devpath are queued or running. */
  pending(devpath: string): boolean {
    return this.scheduler.hasPending(devpath);
  }

  /** The uevent socket's receive buffer (undefined before open). */
  receiveBufferBytes(): number | undefined {
    return this.#sources.receiveBufferBytes();
  }

  progress(): { processed: number; queued: number } {
    return { processed: this.worker.stats().processed, queued: this.scheduler.length };
  }

  /**
   * Stops reading and processes what was accepted, up to `timeoutMs`. Events that have not
   * started by then are recorded unprocessed and running programs are killed, so every
   * accepted event is in the history when this resolves.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    this.#sources.close();
    if (await this.scheduler.idle(timeoutMs)) return;
    const unprocessed = this.#recordQueuedUnprocessed();
    const killed = killRunningPrograms();
    this.#log.warn({ unprocessed, killed, timeoutMs }, 'Stop timeout: events not started were recorded unprocessed; running programs were killed');
    await this.scheduler.idle(3000);
  }

  /** Stops at once: sources, node watches and debounce timers closed, queued events recorded unprocessed. */
  close(): void {
    this.#stopping = true;
    this.#sources.close();
    this.supervisor.nodes.close();
    this.debouncer.close();
    this.#recordQueuedUnprocessed();
  }

  stats() {
    const nodes = this.supervisor.nodes;
    return {
      ...this.#sources.counters(),
      ...this.worker.stats(),
      unprocessedAtStop: this.#unprocessedAtStop,
      ...this.recorder.stats(),
      ...this.publisher.stats(),
      queued: this.scheduler.length,
      running: this.scheduler.running,
      readPauses: this.#readPauses,
      nodesWatched: nodes.size,
      watchChanges: nodes.synthesized,
      watchPartitionRereads: nodes.rereads,
      debounceWaiting: this.debouncer.waiting,
      debounceFired: this.debouncer.fired,
      debounceCancelled: this.debouncer.cancelled,
    };
  }

  #recordQueuedUnprocessed(): number {
    const queued = this.scheduler.takeQueued();
    for (const event of queued) this.recorder.recordUnprocessed(event);
    this.#unprocessedAtStop += queued.length;
    return queued.length;
  }

  // Never throws (the scheduler's handler must not): each stage catches its own failures.
  #finish(outcome: Outcome): void {
    this.recorder.record(outcome);
    this.publisher.publish(outcome);
    this.debouncer.schedule(outcome);
    if (this.#dryRun) return;
    try {
      this.supervisor.follow(outcome);
    } catch (error) {
      this.#log.error({ err: error }, `Failed to start jobs: ${describeError(error)}`);
    }
  }
}
