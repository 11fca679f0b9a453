// path_id: ID_PATH, the device's place on the machine's buses (pci-0000:00:14.0-usb-0:2:1.0,
// pci-0000:00:1f.2-scsi-0:0:0:0), so by-path links survive a change of disk or serial.
import { deviceChain, skipSubsystem, type ChainLink } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

/**
 * udev's SCSI name: host:channel:target:lun, the host counted from the lowest host on the same
 * adapter; behind an ATA port, v252's `ata-PORT.TARGET` (`ata-PORT.BUS.0` behind a port
 * multiplier) with the older `ata-PORT` as the compatible name.
 */
function scsiElement(chain: ChainLink[], at: number): { element: string; hostIndex: number; compat?: string } | undefined {
  const link = chain[at] as ChainLink;
  const numbers = /^(\d+):(\d+):(\d+):(\d+)$/.exec(link.name);
  if (!numbers) return undefined;
  let hostIndex = at + 1;
  while (hostIndex < chain.length && chain[hostIndex]?.devtype !== 'scsi_host') hostIndex++;
  const host = chain[hostIndex];
  if (host === undefined) return undefined;
  const adapter = chain[hostIndex + 1];
  const siblings = adapter ? adapter.view.entries().filter((e) => /^host\d+$/.test(e)) : [];
  const base = siblings.length > 0 ? Math.min(...siblings.map((e) => Number(e.slice(4)))) : Number(host.name.replace(/\D/g, ''));
  const [, h, c, t, l] = numbers.map(Number) as number[];
  const path = link.view.devpath;
  if (path.includes('/ata')) {
    // The ATA port is the SCSI host's parent; its number is its ata_port's port_no.
    const port = chain[hostIndex + 1];
    const portNo = port && /^ata\d+$/.test(port.name) ? (port.view.attribute(`ata_port/${port.name}/port_no`) ?? port.name.slice(3)) : undefined;
    if (portNo === undefined) return undefined;
    return { element: c !== 0 ? `ata-${portNo}.${c}.0` : `ata-${portNo}.${t}`, compat: `ata-${portNo}`, hostIndex };
  }
  if (path.includes('/vmbus_')) return { element: `vmbus-${link.name}`, hostIndex };
  return { element: `scsi-${(h as number) - base}:${c}:${t}:${l}`, hostIndex };
}

/** ID_PATH_TAG: the path with every run of characters other than letters, digits and `-` as one `_`, none at either end. */
export function pathTag(path: string): string {
  return path.replace(/[^A-Za-z0-9-]+/g, '_').replace(/^_+|_+$/g, '');
}

export const pathId: Builtin = {
  name: 'path_id',
  summary: 'ID_PATH and ID_PATH_TAG: the path of buses to the device',
  run(_argv, context) {
    const chain = deviceChain(context);
    const parts: string[] = [];
    // ID_PATH_ATA_COMPAT: the ATA element and the buses above it (pci, platform, acpi, xen).
    let compat: string[] | undefined;
    let supportedParent = false;
    let supportedTransport = false;
    for (let i = 0; i < chain.length; i++) {
      const link = chain[i] as ChainLink;
      switch (link.subsystem) {
        case 'scsi':
          if (link.devtype === 'scsi_device') {
            const scsi = scsiElement(chain, i);
            if (scsi) {
              parts.unshift(scsi.element);
              if (scsi.compat !== undefined) compat = [scsi.compat];
              i = scsi.hostIndex;
              supportedTransport = true;
            }
          }
          break;
        case 'usb':
          if (link.devtype === 'usb_interface' || link.devtype === 'usb_device') {
            const dash = link.name.indexOf('-');
            if (dash < 0) break;
            parts.unshift(`usb-0:${link.name.slice(dash + 1)}`);
            i = skipSubsystem(chain, i, 'usb');
            supportedParent = supportedTransport = true;
          }
          break;
        case 'pci':
          parts.unshift(`pci-${link.name}`);
          compat?.unshift(`pci-${link.name}`);
          i = skipSubsystem(chain, i, 'pci');
          supportedParent = true;
          break;
        case 'platform':
          parts.unshift(`platform-${link.name}`);
          compat?.unshift(`platform-${link.name}`);
          i = skipSubsystem(chain, i, 'platform');
          supportedParent = supportedTransport = true;
          break;
        case 'acpi':
          parts.unshift(`acpi-${link.name}`);
          compat?.unshift(`acpi-${link.name}`);
          i = skipSubsystem(chain, i, 'acpi');
          supportedParent = true;
          break;
        case 'xen':
          parts.unshift(`xen-${link.name}`);
          compat?.unshift(`xen-${link.name}`);
          supportedParent = true;
          break;
        case 'virtio':
          i = skipSubsystem(chain, i, 'virtio');
          supportedTransport = true;
          break;
        case 'serio':
          parts.unshift(`serio-${/\d+$/.exec(link.name)?.[0] ?? link.name}`);
          i = skipSubsystem(chain, i, 'serio');
          break;
        case 'spi':
          parts.unshift(`cs-${/\d+$/.exec(link.name)?.[0] ?? link.name}`);
          break;
        case 'mmc':
          supportedTransport = true;
          break;
        default:
          break;
      }
    }
    if (parts.length === 0 || !supportedParent) return { failed: 'path_id: no known bus above the device' };
    // As udev: a disk with no known transport gets no path, which could name two disks alike.
    if (context.subsystem === 'block' && !supportedTransport) return { failed: 'path_id: the disk has no known transport' };
    const path = parts.join('-');
    return { properties: { ID_PATH: path, ID_PATH_TAG: pathTag(path), ...(compat ? { ID_PATH_ATA_COMPAT: compat.join('-') } : {}) } };
  },
};
