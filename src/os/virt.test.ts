import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { elfHeader } from '../../scripts/prebuild.mjs';
import { hypervisorSignature } from './system-calls.js';
import { machineView, virtFiles } from '../rules/system-view.js';
import { detectContainer, detectVirtualization, detectVm, type VirtFiles } from './virt.js';

/** A machine made of the given files (path → content; exists when present). */
function machine(files: Record<string, string>, extra: Partial<VirtFiles> = {}): VirtFiles {
  return {
    read: (path) => files[path],
    line: (path) => files[path]?.split('\n')[0]?.trim(),
    exists: (path) => path in files,
    cpuidSignature: () => null,
    pid: 4242,
    containerEnv: undefined,
    ...extra,
  };
}

describe('CONST{virt} as systemd-detect-virt finds it', () => {
  it.each([
    ['bare metal', {}, {}, 'none'],
    ['docker (/.dockerenv), even in a KVM guest', { '/.dockerenv': '' }, { cpuidSignature: (): string | null => 'KVMKVMKVM' }, 'docker'],
    ['podman before docker', { '/run/.containerenv': '', '/.dockerenv': '' }, {}, 'podman'],
    ['the manager names itself', { '/run/host/container-manager': 'systemd-nspawn\n', '/.dockerenv': '' }, {}, 'systemd-nspawn'],
    ['an unknown manager', { '/run/systemd/container': 'garden\n' }, {}, 'container-other'],
    ['oci: the files decide', { '/run/systemd/container': 'oci\n', '/.dockerenv': '' }, {}, 'docker'],
    ['PID 1 with container= empty: none, whatever the files say', { '/.dockerenv': '' }, { pid: 1, containerEnv: '' }, 'none'],
    ['PID 1 with container=lxc', {}, { pid: 1, containerEnv: 'lxc' }, 'lxc'],
    ['PID 1 environ read by others', { '/proc/1/environ': 'PATH=/bin\0container=lxc-libvirt\0' }, {}, 'lxc-libvirt'],
    ['openvz', { '/proc/vz': '' }, {}, 'openvz'],
    ['openvz host is no container', { '/proc/vz': '', '/proc/bc': '' }, {}, 'none'],
    ['WSL', { '/proc/sys/kernel/osrelease': '5.15.90.1-microsoft-standard-WSL2\n' }, {}, 'wsl'],
    ['a nested cgroup (v2)', { '/sys/fs/cgroup/cgroup.controllers': '', '/sys/fs/cgroup/cgroup.events': '', '/sys/fs/cgroup/cgroup.type': '' }, {}, 'container-other'],
    ['the root cgroup (v2)', { '/sys/fs/cgroup/cgroup.controllers': '', '/sys/kernel/cgroup/features': '' }, {}, 'none'],
    ['KVM by CPUID, DMI saying QEMU', { '/sys/class/dmi/id/sys_vendor': 'QEMU\n' }, { cpuidSignature: (): string | null => 'KVMKVMKVM' }, 'kvm'],
    ['QEMU with Hyper-V enlightenments: DMI decides', { '/sys/class/dmi/id/sys_vendor': 'QEMU\n' }, { cpuidSignature: (): string | null => 'Microsoft Hv' }, 'qemu'],
    ['Hyper-V itself', {}, { cpuidSignature: (): string | null => 'Microsoft Hv' }, 'microsoft'],
    ['VirtualBox by DMI before CPUID', { '/sys/class/dmi/id/product_name': 'VirtualBox\n' }, { cpuidSignature: (): string | null => 'KVMKVMKVM' }, 'oracle'],
    ['an unknown hypervisor', {}, { cpuidSignature: (): string | null => 'NotKnownHere' }, 'vm-other'],
    ['UML', { '/proc/cpuinfo': 'processor\t: 0\nvendor_id\t: User Mode Linux\n' }, {}, 'uml'],
    ['a Xen guest', { '/proc/xen': '' }, {}, 'xen'],
    ['Xen dom0 is no VM', { '/proc/xen': '', '/proc/xen/capabilities': 'control_d\n' }, {}, 'none'],
    ['an ARM KVM guest by device tree', { '/proc/device-tree/hypervisor/compatible': 'linux,kvm' }, {}, 'kvm'],
  ] as const)('%s', (_, files, extra, expected) => {
    expect(detectVirtualization(machine(files, extra))).toBe(expected);
  });

  const detectVirt = ['/usr/bin/systemd-detect-virt', '/bin/systemd-detect-virt'].find((p) => existsSync(p));
  const ELF_MACHINES: Record<string, number> = { x64: 62, ia32: 3, arm64: 183, arm: 40 };
  const elfMachine = (path: string) => elfHeader(path)?.machine;
  const ask = (...args: string[]) => {
    try {
      return execFileSync(detectVirt!, args, { encoding: 'utf8' }).trim();
    } catch (error) {
      return String((error as { stdout: string }).stdout).trim(); // exit 1 with "none"
    }
  };

  // systemd-detect-virt reads CPUID where it is an x86 program; under emulation (an arm64
  // build of hotplugd on an x86 host, scripts/arm-tests.sh) only its answers without CPUID
  // compare: the container.
  const sameArchitecture = detectVirt === undefined || elfMachine(detectVirt) === ELF_MACHINES[process.arch];

  it.runIf(detectVirt !== undefined || process.env.CI === 'true')('agrees with systemd-detect-virt on this machine (all, --container, --vm)', () => {
    const real = virtFiles('/sys', '/proc', { cpuidSignature: hypervisorSignature });
    expect(detectContainer(real)).toBe(ask('--container'));
    if (!sameArchitecture) return;
    expect(machineView('/sys', '/proc', { cpuidSignature: hypervisorSignature }).constant('virt')).toBe(ask());
    expect(detectVm(real)).toBe(ask('--vm'));
  });
});
