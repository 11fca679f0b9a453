// What the kernel's route messages mean for rules: the carrier and address state of each
// interface, and the transitions between states (link-up, link-down, address-add,
// address-remove). Pure: messages in, changes out. A message that changes neither the
// carrier nor the address set changes nothing (the kernel repeats itself often: flags,
// statistics, IPv6 lifetimes).
import type { LinkAction } from './event.js';
import { hasCarrier, IFF_UP, OPERSTATES, type AddressMessage, type LinkMessage } from './rtnetlink.js';

export interface LinkChange {
  action: LinkAction;
  ifindex: number;
  name: string;
  /** INTERFACE, IFINDEX, OPERSTATE, CARRIER, ADMIN; for addresses IP_ADDRESS, PREFIX_LENGTH, ADDRESS_FAMILY, SCOPE. */
  properties: Record<string, string>;
}

interface LinkRecord {
  name: string;
  carrier: boolean;
  message: LinkMessage;
  addresses: Map<string, AddressMessage>;
}

/** How a first sight of an interface is reported: its state (the start-up snapshot), or only a carrier (later). */
export type FirstSight = 'state' | 'carrier';

const addressKey = (m: AddressMessage) => `${m.family} ${m.address}/${m.prefixLength}`;

function linkProperties(record: LinkRecord): Record<string, string> {
  const m = record.message;
  return {
    INTERFACE: record.name,
    IFINDEX: String(m.ifindex),
    OPERSTATE: m.operstate === undefined ? 'unknown' : (OPERSTATES[m.operstate] ?? String(m.operstate)),
    CARRIER: record.carrier ? '1' : '0',
    ADMIN: m.flags & IFF_UP ? 'up' : 'down',
  };
}

function addressChange(action: LinkAction, record: LinkRecord, m: AddressMessage): LinkChange {
  return {
    action,
    ifindex: m.ifindex,
    name: record.name,
    properties: {
      INTERFACE: record.name,
      IFINDEX: String(m.ifindex),
      IP_ADDRESS: m.address,
      PREFIX_LENGTH: String(m.prefixLength),
      ADDRESS_FAMILY: m.family,
      SCOPE: m.scope,
    },
  };
}

export class LinkStates {
  #links = new Map<number, LinkRecord>();
  #sweep: { links: Set<number>; addresses: Set<string> } | undefined;

  get size(): number {
    return this.#links.size;
  }

  /** The interface's name as last seen (undefined: not known, or deleted). */
  nameOf(ifindex: number): string | undefined {
    return this.#links.get(ifindex)?.name;
  }

  /** One link or address message; returns the transitions it makes. */
  apply(m: LinkMessage | AddressMessage, firstSight: FirstSight): LinkChange[] {
    return m.kind === 'link' ? this.#applyLink(m, firstSight) : this.#applyAddress(m);
  }

  #applyLink(m: LinkMessage, firstSight: FirstSight): LinkChange[] {
    const known = this.#links.get(m.ifindex);
    if (m.deleted) {
      // Gone: nothing more is said of it (its remove uevent tells the rest).
      this.#links.delete(m.ifindex);
      return [];
    }
    this.#sweep?.links.add(m.ifindex);
    const carrier = hasCarrier(m.operstate, m.flags);
    const record: LinkRecord = { name: m.name ?? known?.name ?? `if${m.ifindex}`, carrier, message: m, addresses: known?.addresses ?? new Map() };
    this.#links.set(m.ifindex, record);
    const changed = known === undefined ? carrier || firstSight === 'state' : known.carrier !== carrier;
    if (!changed) return [];
    return [{ action: carrier ? 'link-up' : 'link-down', ifindex: m.ifindex, name: record.name, properties: linkProperties(record) }];
  }

  #applyAddress(m: AddressMessage): LinkChange[] {
    const record = this.#links.get(m.ifindex);
    if (record === undefined) return []; // its interface is gone, or not seen yet
    const key = addressKey(m);
    if (m.deleted) {
      if (!record.addresses.delete(key)) return [];
      return [addressChange('address-remove', record, m)];
    }
    this.#sweep?.addresses.add(`${m.ifindex} ${key}`);
    const had = record.addresses.has(key);
    record.addresses.set(key, m);
    return had ? [] : [addressChange('address-add', record, m)];
  }

  /** A full dump follows (a resync): what it does not mention is gone. */
  beginSweep(): void {
    this.#sweep = { links: new Set(), addresses: new Set() };
  }

  /** The dump is over: addresses it did not list are removed; interfaces it did not list are forgotten. */
  endSweep(): LinkChange[] {
    const sweep = this.#sweep;
    this.#sweep = undefined;
    if (sweep === undefined) return [];
    const changes: LinkChange[] = [];
    for (const [ifindex, record] of this.#links) {
      if (!sweep.links.has(ifindex)) {
        this.#links.delete(ifindex);
        continue;
      }
      for (const [key, m] of record.addresses) {
        if (sweep.addresses.has(`${ifindex} ${key}`)) continue;
        record.addresses.delete(key);
        changes.push(addressChange('address-remove', record, m));
      }
    }
    return changes;
  }
}
