// The route socket's side of intake: link and address changes (uevent/route-source.ts)
// become events on the interface's device — subsystem `net`, its devpath, `source`
// rtnetlink (coldplug for the start-up snapshot, resync after lost notifications) — and go
// into the same queue as uevents, so they are ordered with the device's own events.
import { readlinkSync } from 'node:fs';
import { describeError } from '../errors.js';
import type { Incident } from '../history/records.js';
import type { Logger } from '../log.js';
import { createProperties, type Uevent } from '../uevent/event.js';
import type { LinkChange } from '../uevent/link-state.js';
import { RouteSource, type LinkSource } from '../uevent/route-source.js';

export interface LinkIntakeParts {
  sysfsRoot: string;
  log: Logger;
  push(event: Uevent): void;
  /** Records and publishes an incident (pipeline.ts). */
  reportIncident(incident: Incident): void;
  room(): number;
  logRejection(rejection: { reason: string; detail: string; senderPort: number }): void;
  /** Called before each change of the device is queued (the sources may read the uevent socket first). */
  beforeChange?(devpath: string): void;
}

/** The event of one link or address change, on the interface's device. */
export function linkEvent(change: LinkChange, devpath: string, source: LinkSource, receivedAt: number): Uevent {
  const properties = createProperties();
  properties.ACTION = change.action;
  properties.DEVPATH = devpath;
  properties.SUBSYSTEM = 'net';
  for (const [key, value] of Object.entries(change.properties)) properties[key] = value;
  return { action: change.action, devpath, subsystem: 'net', properties, receivedAt, source };
}

export class LinkIntake {
  readonly source: RouteSource;
  /** Changes whose interface was gone before its device could be told (no devpath known). */
  unresolved = 0;
  #p: LinkIntakeParts;
  // The devpath each interface had when last seen: a change reported just after its
  // interface went (addresses removed on delete) still names the right device.
  #devpaths = new Map<number, string>();

  constructor(parts: LinkIntakeParts, receiveBufferBytes?: number) {
    this.#p = parts;
    this.source = new RouteSource(
      {
        onChange: (change, source) => this.#change(change, source),
        onReject: (rejection) => parts.logRejection({ ...rejection, reason: `route ${rejection.reason}` }),
        onOverflow: () => parts.log.warn({ enobufs: this.source.counters.enobufs }, 'Link notifications were lost (ENOBUFS: receive buffer full); dumping links and addresses again'),
        onResynced: (changes, reports) => {
          parts.reportIncident({ kind: 'link-overflow', at: Date.now(), detail: { enobufsReports: reports, resyncChanges: changes } });
          parts.log.warn({ changes }, 'Resynced links and addresses after lost notifications');
        },
        onError: (error) => parts.log.error({ err: error }, `Failed to read the kernel route socket: ${describeError(error)}`),
        room: parts.room,
      },
      receiveBufferBytes,
    );
  }

  #devpathOf(change: LinkChange): string | undefined {
    try {
      const target = readlinkSync(`${this.#p.sysfsRoot}/class/net/${change.name}`);
      const at = target.indexOf('/devices/');
      if (at >= 0) {
        const devpath = target.slice(at);
        this.#devpaths.set(change.ifindex, devpath);
        return devpath;
      }
    } catch {
      // gone already (or renamed meanwhile): the devpath it had
    }
    return this.#devpaths.get(change.ifindex);
  }

  #change(change: LinkChange, source: LinkSource): void {
    const devpath = this.#devpathOf(change);
    if (devpath === undefined) {
      this.unresolved++;
      this.#p.log.debug({ ifindex: change.ifindex, interface: change.name, action: change.action }, 'Link change of an interface already gone: not queued');
      return;
    }
    this.#p.beforeChange?.(devpath);
    this.#p.push(linkEvent(change, devpath, source, Date.now()));
  }

  /** Forgets an interface's devpath once its device is removed. */
  forget(devpath: string): void {
    for (const [ifindex, known] of this.#devpaths) if (known === devpath) this.#devpaths.delete(ifindex);
  }
}
