// Coldplug after READY, as udevd's trigger service does after udevd is up: systemd and
// clients need not wait for a walk of all of sysfs. The kernel socket is already bound
// (nothing sent meanwhile is lost) but is read only once the coldplug events are queued,
// so a device's kernel events always come after its coldplug `add`.
import type { Logger } from '../log.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import type { PresentDevices } from './present-devices.js';

export interface ColdplugParts {
  sysfs: Sysfs;
  present: PresentDevices;
  log: Logger;
  enabled: boolean;
  push(event: Uevent): void;
  /** Resolves when nothing is queued or running. */
  idle(): Promise<unknown>;
  stopping(): boolean;
}

/** Seeds the present devices and queues an `add` per device; logs when they have all been processed. */
export function coldplug(parts: ColdplugParts): number {
  const started = performance.now();
  if (!parts.enabled || parts.stopping()) {
    parts.present.seed(parts.sysfs);
    return 0;
  }
  const now = Date.now();
  // One walk of sysfs both seeds the present devices and makes the events (it was two).
  const events: Uevent[] = [];
  for (const devpath of parts.sysfs.enumerate()) {
    const event = parts.sysfs.synthesizeEvent(devpath, 'add', 'coldplug', now);
    if (event === undefined) continue;
    parts.present.know(devpath, event.subsystem);
    events.push(event);
  }
  // Every device is known before the first event is processed, as with a separate seed.
  for (const event of events) parts.push(event);
  void parts.idle().then(() => {
    parts.log.info({ coldplugged: events.length, durationMs: Math.round(performance.now() - started) }, 'Coldplug finished');
  });
  return events.length;
}
