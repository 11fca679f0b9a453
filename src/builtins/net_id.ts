// net_id: predictable network interface names, as candidates in ID_NET_NAME_MAC (enx...),
// ID_NET_NAME_ONBOARD (eno1) and ID_NET_NAME_PATH (enp2s0, enp0s20f0u2), for rules that
// rename interfaces with NAME="$env{ID_NET_NAME_PATH}".
import { deviceChain, type ChainLink } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

// ARPHRD_* → name prefix.
const PREFIXES: Record<number, string> = { 1: 'en', 32: 'ib', 256: 'sl' };

function pciName(link: ChainLink): string | undefined {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(link.name);
  if (!m) return undefined;
  const [domain, bus, slot, fn] = [m[1], m[2], m[3], m[4]].map((x) => Number.parseInt(x as string, 16)) as number[];
  return `${domain ? `P${domain}` : ''}p${bus}s${slot}${fn ? `f${fn}` : ''}`;
}

function usbSuffix(link: ChainLink): string | undefined {
  // 2-1.4:1.0 → ports 1.4, configuration 1, interface 0 → u1u4 (c1 and i0 are the defaults).
  const m = /^\d+-([\d.]+):(\d+)\.(\d+)$/.exec(link.name);
  if (!m) return undefined;
  const ports = (m[1] as string).split('.').join('u');
  return `u${ports}${m[2] === '1' ? '' : `c${m[2]}`}${m[3] === '0' ? '' : `i${m[3]}`}`;
}

export const netId: Builtin = {
  name: 'net_id',
  summary: 'ID_NET_NAME_MAC, ID_NET_NAME_ONBOARD and ID_NET_NAME_PATH for network interfaces',
  run(_argv, context) {
    if (context.subsystem !== 'net' || context.device === undefined) return { failed: 'net_id: not a network interface' };
    const dev = context.device;
    const type = Number(dev.attribute('type'));
    let prefix = PREFIXES[type];
    if (prefix === undefined) return { failed: `net_id: no naming scheme for interface type ${type}` };
    if (context.properties.DEVTYPE === 'wlan') prefix = 'wl';
    else if (context.properties.DEVTYPE === 'wwan') prefix = 'ww';
    // As udev: stacked interfaces (a VLAN, a veth whose link is its peer) are not named.
    const iflink = dev.attribute('iflink')?.trim();
    if (iflink !== undefined && iflink !== dev.attribute('ifindex')?.trim()) return { properties: {} };
    const p: Record<string, string> = { ID_NET_NAMING_SCHEME: 'v252' };
    const address = dev.attribute('address')?.trim();
    if (dev.attribute('addr_assign_type')?.trim() === '0' && address && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(address) && address !== '00:00:00:00:00:00') {
      p.ID_NET_NAME_MAC = `${prefix}x${address.replaceAll(':', '').toLowerCase()}`;
    }
    const chain = deviceChain(context);
    const pci = chain.find((l) => l.subsystem === 'pci');
    const devPort = Number(dev.attribute('dev_port') ?? '0');
    const portSuffix = devPort > 0 ? `d${devPort}` : '';
    if (pci !== undefined) {
      const index = pci.view.attribute('acpi_index') ?? pci.view.attribute('index');
      if (index !== undefined && /^\d+$/.test(index.trim()) && Number(index) > 0) p.ID_NET_NAME_ONBOARD = `${prefix}o${Number(index)}${portSuffix}`;
      const slot = pciName(pci);
      const usb = chain.find((l) => l.subsystem === 'usb' && l.devtype === 'usb_interface');
      if (slot !== undefined) {
        const usbPart = usb === undefined ? '' : (usbSuffix(usb) ?? '');
        p.ID_NET_NAME_PATH = `${prefix}${slot}${usbPart}${usb === undefined ? portSuffix : ''}`;
      }
    }
    // As udev: an interface with no stable name still gets the naming scheme.
    return { properties: p };
  },
};
