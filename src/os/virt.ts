// udev's CONST{virt}: what systemd-detect-virt prints, found in the same order of checks
// (systemd's src/basic/virt.c, read, not copied): containers first (OpenVZ, WSL, proot,
// the container manager's own word in /run, PID 1's $container, well-known files, a
// cgroup namespace), then virtual machines (DMI vendors, UML, Xen, the CPUID hypervisor
// signature, DMI again, /sys/hypervisor, the device tree). Reads go through `VirtFiles`
// so tests can give a tree of their own.

export interface VirtFiles {
  /** The first line of a file under the root (`/proc/...`, `/sys/...`, `/run/...`), or undefined. */
  line(path: string): string | undefined;
  /** The whole file, or undefined. */
  read(path: string): string | undefined;
  exists(path: string): boolean;
  /** The CPUID hypervisor signature ("KVMKVMKVM"), "" when unnamed, null for none (or not x86). */
  cpuidSignature(): string | null;
  /** This process's pid and $container (only PID 1's own variable counts). */
  pid: number;
  containerEnv: string | undefined;
}

const CONTAINERS = new Set(['lxc', 'lxc-libvirt', 'systemd-nspawn', 'docker', 'podman', 'rkt', 'wsl', 'proot', 'pouch']);

const CPUID_SIGNATURES: Record<string, string> = {
  XenVMMXenVMM: 'xen', KVMKVMKVM: 'kvm', 'Linux KVM Hv': 'kvm', TCGTCGTCGTCG: 'qemu', VMwareVMware: 'vmware',
  'Microsoft Hv': 'microsoft', 'bhyve bhyve ': 'bhyve', QNXQVMBSQG: 'qnx', ACRNACRNACRN: 'acrn',
};

// Prefixes of DMI strings, in systemd's order (KVM before QEMU: product_name says KVM).
const DMI_VENDORS: [string, string][] = [
  ['KVM', 'kvm'], ['OpenStack', 'kvm'], ['KubeVirt', 'kvm'], ['Amazon EC2', 'amazon'], ['QEMU', 'qemu'],
  ['VMware', 'vmware'], ['VMW', 'vmware'], ['innotek GmbH', 'oracle'], ['VirtualBox', 'oracle'], ['Oracle Corporation', 'oracle'],
  ['Xen', 'xen'], ['Bochs', 'bochs'], ['Parallels', 'parallels'], ['BHYVE', 'bhyve'], ['Hyper-V', 'microsoft'],
  ['Apple Virtualization', 'apple'], ['Google Compute Engine', 'google'],
];
const DMI_FILES = ['product_name', 'sys_vendor', 'board_vendor', 'bios_vendor', 'product_version'];

function containerFiles(files: VirtFiles): string {
  if (files.exists('/run/.containerenv')) return 'podman';
  if (files.exists('/.dockerenv')) return 'docker';
  return 'none';
}

function containerName(name: string, files: VirtFiles): string {
  if (name === 'oci') {
    const found = containerFiles(files);
    return found === 'none' ? 'container-other' : found;
  }
  return CONTAINERS.has(name) ? name : 'container-other';
}

function inCgroupNamespace(files: VirtFiles): boolean {
  if (files.exists('/sys/fs/cgroup/cgroup.controllers')) {
    // cgroup v2: cgroup.events exists in nested cgroups only; cgroup.type never in the root.
    if (!files.exists('/sys/fs/cgroup/cgroup.events')) return false;
    if (files.exists('/sys/fs/cgroup/cgroup.type')) return true;
    return !files.exists('/sys/kernel/cgroup/features');
  }
  // cgroup v1: release_agent exists in the root cgroup only.
  return files.exists('/sys/fs/cgroup/systemd') && !files.exists('/sys/fs/cgroup/systemd/release_agent');
}

/** The container systemd-detect-virt --container would name, or "none". */
export function detectContainer(files: VirtFiles): string {
  if (files.exists('/proc/vz') && !files.exists('/proc/bc')) return 'openvz';
  const osrelease = files.line('/proc/sys/kernel/osrelease') ?? '';
  if (osrelease.includes('Microsoft') || osrelease.includes('WSL')) return 'wsl';
  const tracer = /^TracerPid:\s*(\d+)/m.exec(files.read('/proc/self/status') ?? '')?.[1];
  if (tracer !== undefined && tracer !== '0' && files.line(`/proc/${tracer}/comm`)?.startsWith('proot')) return 'proot';
  const manager = files.line('/run/host/container-manager');
  if (manager) return containerName(manager, files);
  if (files.pid === 1) {
    if (files.containerEnv === '') return 'none';
    if (files.containerEnv !== undefined) return containerName(files.containerEnv, files);
  } else {
    const declared = files.line('/run/systemd/container');
    if (declared) return containerName(declared, files);
    // PID 1's environment needs privileges; without them this check is skipped, as in systemd.
    const environ = files.read('/proc/1/environ')?.split('\0').find((entry) => entry.startsWith('container='));
    if (environ !== undefined && environ.length > 'container='.length) return containerName(environ.slice('container='.length), files);
  }
  const found = containerFiles(files);
  if (found !== 'none') return found;
  return inCgroupNamespace(files) ? 'container-other' : 'none';
}

function dmiVendor(files: VirtFiles): string {
  for (const name of DMI_FILES) {
    const value = files.line(`/sys/class/dmi/id/${name}`);
    if (value === undefined) continue;
    const match = DMI_VENDORS.find(([prefix]) => value.startsWith(prefix));
    if (match) return match[1];
  }
  return 'none';
}

// The SMBIOS "this is a VM" bit (BIOS characteristics extension byte 2, bit 4).
function smbiosSaysVm(files: VirtFiles): boolean | undefined {
  const raw = files.read('/sys/firmware/dmi/entries/0-0/raw');
  if (raw === undefined || raw.length < 20 || raw.charCodeAt(1) < 20) return undefined;
  return (raw.charCodeAt(19) & 0x10) !== 0;
}

function detectDmi(files: VirtFiles): string {
  const vendor = dmiVendor(files);
  if (vendor === 'amazon') {
    const vm = smbiosSaysVm(files);
    if (vm !== undefined) return vm ? 'amazon' : 'none';
    return /\.metal(-|$)/.test(files.line('/sys/class/dmi/id/product_name') ?? '') ? 'none' : 'amazon';
  }
  if (vendor === 'none' && smbiosSaysVm(files) === true) return 'vm-other';
  return vendor;
}

function deviceTree(files: VirtFiles): string {
  const hypervisor = files.line('/proc/device-tree/hypervisor/compatible');
  if (hypervisor !== undefined) {
    if (hypervisor === 'linux,kvm') return 'kvm';
    if (hypervisor.includes('xen')) return 'xen';
    if (hypervisor.includes('vmware')) return 'vmware';
    return 'vm-other';
  }
  if (files.line('/proc/device-tree/compatible') === 'qemu,pseries') return 'qemu';
  return 'none';
}

/** The virtual machine systemd-detect-virt --vm would name, or "none". */
export function detectVm(files: VirtFiles): string {
  let other = false;
  let hyperv = false;
  const dmi = detectDmi(files);
  if (['oracle', 'xen', 'amazon', 'parallels', 'google'].includes(dmi)) return dmi;
  const cpuinfoVendor = /^vendor_id\t: (.*)$/m.exec(files.read('/proc/cpuinfo') ?? '')?.[1];
  if (cpuinfoVendor?.startsWith('User Mode Linux')) return 'uml';
  let xenDom0 = false;
  if (files.exists('/proc/xen')) {
    const features = files.line('/sys/hypervisor/properties/features');
    xenDom0 = features !== undefined
      ? (Number.parseInt(features, 16) & (1 << 11)) !== 0
      : (files.line('/proc/xen/capabilities') ?? '').split(',').includes('control_d');
    if (!xenDom0) return 'xen';
  }
  const signature = files.cpuidSignature();
  if (signature !== null) {
    const named = CPUID_SIGNATURES[signature];
    if (named === 'microsoft') hyperv = true;
    else if (named !== undefined) return named;
    else other = true;
  }
  if (xenDom0) return hyperv ? 'microsoft' : other ? 'vm-other' : 'none';
  if (dmi === 'vm-other') other = true;
  else if (dmi !== 'none') return dmi;
  const hypervisorType = files.line('/sys/hypervisor/type');
  if (hypervisorType === 'xen') return 'xen';
  if (hypervisorType !== undefined) other = true;
  const tree = deviceTree(files);
  if (tree === 'vm-other') other = true;
  else if (tree !== 'none') return tree;
  return hyperv ? 'microsoft' : other ? 'vm-other' : 'none';
}

/** What systemd-detect-virt prints: a container if there is one, else a VM, else "none". */
export function detectVirtualization(files: VirtFiles): string {
  const container = detectContainer(files);
  return container !== 'none' ? container : detectVm(files);
}
