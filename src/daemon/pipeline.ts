// The straight line one event travels once it is read from the kernel:
//   intake (SEQNUM gaps, overflow resync; link changes from the route socket) → debouncer
//   (a newer event cancels debounced rules waiting on the old state) → scheduler (ordered per device, bounded)
//   → worker (evaluate the rules, act) → recorder (history row) → publisher (metrics,
//   subscribers, libudev broadcast, waiters) → supervisor (jobs and units of the device)
//   → debouncer (the event's debounced rules wait their turn, queued again if the state held).
// Each stage has one downstream link, set here and nowhere else, and its own stats().
import type { ActionExecutor } from '../actions/execute.js';
import { describeError } from '../errors.js';
import type { HistoryWriter } from '../history/writer.js';
import type { Logger } from '../log.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { Intake } from './intake.js';
import { Publisher, type PublisherParts } from './publisher.js';
import { Recorder, type LaterResult, type RecorderParts } from './recorder.js';
import type { DeviceRegistry } from './registry.js';
import { EventScheduler } from './scheduler.js';
import { DeviceSupervisor } from './supervisor.js';
import { Debouncer } from './debounce.js';
import { EventWorker, type Outcome, type WorkerParts } from './worker.js';

export interface PipelineParts {
  worker: WorkerParts;
  recorder: RecorderParts;
  publisher: PublisherParts;
  executor: ActionExecutor;
  writer: HistoryWriter;
  registry: DeviceRegistry;
  sysfs: Sysfs;
  log: Logger;
  capacity: number;
  maxEvents: number;
  dryRun: boolean;
  /** The kernel socket: paused when the queue is full, and what intake reports about it. */
  /** udev's /run/udev/queue, kept present while events are pending (with --udev). */
  queueFlag?: { busy(): void; idle(): void } | undefined;
  source: { pause(): void; resume(): void; receiveBufferBytes(): number | undefined; enobufs(): number | undefined; readNow(): number };
  stopping: () => boolean;
}

export class Pipeline {
  readonly intake: Intake;
  readonly scheduler: EventScheduler<Uevent>;
  readonly worker: EventWorker;
  readonly recorder: Recorder;
  readonly publisher: Publisher;
  readonly supervisor: DeviceSupervisor;
  readonly debouncer: Debouncer;
  /** Times the queue filled and reading the socket was paused. */
  #readPauses = 0;
  #log: Logger;

  constructor(p: PipelineParts) {
    this.#log = p.log;
    this.worker = new EventWorker(p.worker);
    this.recorder = new Recorder(p.recorder);
    this.publisher = new Publisher(p.publisher);
    const reportLater = (later: LaterResult) => {
      this.recorder.recordLater(later);
      this.publisher.publishLater(later);
    };
    this.supervisor = new DeviceSupervisor(p.executor, p.log, reportLater, p.sysfs.root);
    this.debouncer = new Debouncer({ active: () => p.worker.rules().debounced, push: (event) => this.enqueue(event), report: reportLater, log: p.log });
    this.scheduler = new EventScheduler<Uevent>(
      { capacity: p.capacity, maxRunning: p.maxEvents },
      {
        handle: (event) => {
          const outcome = this.worker.handle(event);
          if (!(outcome instanceof Promise)) return this.#finish(outcome, p.dryRun);
          return outcome.then((done) => this.#finish(done, p.dryRun));
        },
        onFull: () => {
          this.#readPauses++;
          p.source.pause();
        },
        onRoom: () => p.source.resume(),
        onIdle: () => {
          p.queueFlag?.idle();
          this.intake.resyncIfPending();
        },
        onBusy: () => p.queueFlag?.busy(),
      },
    );
    this.intake = new Intake({
      writer: p.writer,
      log: p.log,
      registry: p.registry,
      sysfs: p.sysfs,
      push: (event) => this.enqueue(event),
      queued: () => this.scheduler.length,
      stopping: p.stopping,
      receiveBufferBytes: p.source.receiveBufferBytes,
      enobufs: p.source.enobufs,
      readNow: p.source.readNow,
    });
  }

  /** Queues an event from any source: uevents, link changes, debounced turns. */
  enqueue(event: Uevent): void {
    this.debouncer.observe(event);
    this.scheduler.push(event);
  }

  stats() {
    return { ...this.worker.stats(), ...this.recorder.stats(), ...this.publisher.stats(), queued: this.scheduler.length, running: this.scheduler.running, readPauses: this.#readPauses };
  }

  // Never throws (the scheduler's handler must not): each stage catches its own failures.
  #finish(outcome: Outcome, dryRun: boolean): void {
    this.recorder.record(outcome);
    this.publisher.publish(outcome);
    this.debouncer.schedule(outcome);
    if (dryRun) return;
    try {
      this.supervisor.follow(outcome);
    } catch (error) {
      this.#log.error({ err: error }, `Failed to start jobs: ${describeError(error)}`);
    }
  }
}
