// net_setup_link: the systemd .link file an interface matches (ID_NET_LINK_FILE), its
// driver (ID_NET_DRIVER, from ethtool) and the name that file's NamePolicy= or Name=
// gives it (ID_NET_NAME), which Debian's 80-net-setup-link.rules then makes its NAME: so
// interfaces are named as udev names them. It also plans the MAC address
// (MACAddressPolicy=, MACAddress=) and alternative names (AlternativeNamesPolicy=,
// AlternativeName=) the executor sets; other [Link] settings (MTU...) are not applied: see docs/udev.md.
import { hostname } from 'node:os';
import type { Builtin } from '../rules/builtin.js';
import { machineView } from '../rules/system-view.js';
import { ethtoolDriver } from '../os/system-calls.js';
import { currentLinkFiles, type LinkConfig, type LinkFacts } from './link-files.js';
import { machineIdBytes, plannedAltnames, plannedMac, stableName } from './link-settings.js';

const IFF_LOOPBACK = 0x8;
// name_assign_type (include/uapi/linux/netdevice.h)
const NET_NAME_PREDICTABLE = 2;
const NET_NAME_USER = 3;
const NET_NAME_RENAMED = 4;
const ARPHRD_NAMES: Record<number, string> = { 1: 'ether', 32: 'infiniband', 772: 'loopback', 776: 'sit', 778: 'gre', 65534: 'none' };
const POLICY_PROPERTIES: Record<string, string> = { database: 'ID_NET_NAME_FROM_DATABASE', onboard: 'ID_NET_NAME_ONBOARD', slot: 'ID_NET_NAME_SLOT', path: 'ID_NET_NAME_PATH', mac: 'ID_NET_NAME_MAC' };

// The machine as [Match] Virtualization=, Architecture= and KernelCommandLine= see it; the
// view caches what does not change (the virtualization, the command line).
const machine = machineView();
// Read once, as systemd's sd_id128_get_machine() caches it: it does not change while running.
let machineId: Uint8Array | undefined | null = null;
const currentMachineId = () => (machineId === null ? (machineId = machineIdBytes(machine.readFile('/etc/machine-id'))) : machineId);

/** The interface's ethtool driver; undefined when it has none, is gone, or is in another namespace. */
function driverOf(ifname: string): string | undefined {
  try {
    return ethtoolDriver(ifname) ?? undefined;
  } catch {
    return undefined;
  }
}

/** The name a configuration gives: the first NamePolicy= that yields one, else Name=. */
export function chooseName(config: LinkConfig, current: string, nameAssignType: number, properties: Readonly<Record<string, string>>): string | undefined {
  for (const policy of config.namePolicy) {
    if (policy === 'keep' && (nameAssignType === NET_NAME_USER || nameAssignType === NET_NAME_RENAMED)) return current;
    if (policy === 'kernel' && nameAssignType === NET_NAME_PREDICTABLE) return current;
    const property = POLICY_PROPERTIES[policy];
    if (property !== undefined && properties[property]) return properties[property];
  }
  return config.name;
}

export const netSetupLink: Builtin = {
  name: 'net_setup_link',
  summary: 'the systemd .link file of a network interface: ID_NET_LINK_FILE, ID_NET_DRIVER, ID_NET_NAME',
  run(_argv, context) {
    if (context.subsystem !== 'net' || context.device === undefined) return { failed: 'net_setup_link: not a network interface' };
    const dev = context.device;
    const ifname = context.properties.INTERFACE ?? dev.kernel;
    // As udev: the loopback interface is left alone.
    if (Number.parseInt(dev.attribute('flags') ?? '0', 16) & IFF_LOOPBACK) return { properties: {} };
    const properties: Record<string, string> = {};
    const driver = driverOf(ifname);
    if (driver !== undefined) properties.ID_NET_DRIVER = driver;
    const facts: LinkFacts = {
      originalName: ifname,
      mac: dev.attribute('address')?.trim(),
      path: context.properties.ID_PATH,
      driver,
      type: context.properties.DEVTYPE ?? ARPHRD_NAMES[Number(dev.attribute('type'))],
      // The netlink kind of virtual interfaces is their ethtool driver (veth, bridge, vlan...).
      kind: context.devpath.startsWith('/devices/virtual/') ? driver : undefined,
      properties: context.properties,
      virtualization: machine.constant('virt'),
      architecture: machine.constant('arch'),
      host: hostname(),
      kernelCommandLine: machine.cmdline(),
    };
    const config = currentLinkFiles().configs.find((c) => c.matches.every((match) => match(facts)));
    if (config === undefined) return { properties };
    properties.ID_NET_LINK_FILE = config.file;
    const name = chooseName(config, ifname, Number(dev.attribute('name_assign_type')), context.properties);
    if (name !== undefined) properties.ID_NET_NAME = name;
    // As udevd: settings on add, bind and move; other events only tell what the file is.
    if (!['add', 'bind', 'move'].includes(context.action)) return { properties };
    const mac = plannedMac({
      policy: config.macAddressPolicy,
      fixed: config.mac,
      addrAssignType: Number(dev.attribute('addr_assign_type') ?? Number.NaN),
      stableName: stableName(context.properties, ifname),
      machineId: currentMachineId(),
    });
    const altnames = plannedAltnames(config.alternativeNames, config.alternativeNamesPolicy, context.properties, ifname, name);
    return mac === null && altnames.length === 0 ? { properties } : { properties, interface: { mac, altnames } };
  },
};

/** net_driver (newer udev): ID_NET_DRIVER alone. */
export const netDriver: Builtin = {
  name: 'net_driver',
  summary: 'ID_NET_DRIVER: the driver of a network interface, from ethtool',
  run(_argv, context) {
    if (context.subsystem !== 'net') return { failed: 'net_driver: not a network interface' };
    const driver = driverOf(context.properties.INTERFACE ?? '');
    const properties: Record<string, string> = driver === undefined ? {} : { ID_NET_DRIVER: driver };
    return { properties };
  },
};
