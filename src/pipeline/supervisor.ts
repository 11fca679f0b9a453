// Jobs, systemd units and node watches live as long as their device: started with an
// event that asks for them (once it is recorded, so their results can name it), stopped on
// the device's remove (jobs a link-up started: on the interface's link-down too). What they report later (started, exited, stopped) comes out as
// LaterResults.
import type { ActionExecutor } from '../actions/execute.js';
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LaterResult } from './recorder.js';
import { NodeWatcher } from '../actions/node-watch.js';
import { eventLogger, type Outcome } from './worker.js';

export class DeviceSupervisor {
  #executor: ActionExecutor;
  #log: Logger;
  #onResult: (later: LaterResult) => void;

  readonly nodes: NodeWatcher;

  constructor(executor: ActionExecutor, log: Logger, onResult: (later: LaterResult) => void, sysfsRoot: string) {
    this.#executor = executor;
    this.#log = log;
    this.#onResult = onResult;
    this.nodes = new NodeWatcher(sysfsRoot, log);
  }

  follow({ id, event, evaluation }: Outcome): void {
    const plan = evaluation?.plan;
    this.nodes.follow(event, plan);
    if (plan === undefined) return;
    const { jobs, units } = this.#executor;
    const report = (result: ActionResult) => this.#onResult({ eventId: id, event, result });
    const failed = (error: unknown) => eventLogger(this.#log, event).error({ err: error }, `Failed to stop jobs: ${describeError(error)}`);
    if (event.action === 'remove') {
      jobs.stopDevice(event.devpath).catch(failed);
      units.stopDevice(event.devpath).then((results) => results.forEach(report), failed);
      return;
    }
    // A job a link-up started runs while the cable is in: the interface's link-down stops it.
    if (event.action === 'link-down') jobs.stopDevice(event.devpath, true).catch(failed);
    for (const job of plan.jobs) jobs.ensure(event.devpath, job, plan.properties, report, event.action === 'link-up');
    for (const { unit, rule } of plan.units) units.start(event.devpath, unit, rule).then(report, failed);
  }
}
