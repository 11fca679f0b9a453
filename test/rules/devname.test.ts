// DEVNAME as each rule language has it: udev rules see the node's path (/dev/sdb1) in
// matches, substitutions and their programs' environment, as udevd gives it; hotplugd's
// YAML and mdev.conf see the kernel's name (sdb1). libudev listeners get the path too.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ActionExecutor } from '../../src/actions/execute.js';
import { evaluate, type ImportRequest } from '../../src/engine/evaluate.js';
import { compileMdevConf } from '../../src/frontends/mdev/compile.js';
import { compileUdevRules } from '../../src/frontends/udev/compile.js';
import { compileYamlRules } from '../../src/frontends/yaml.js';
import { staticAccounts } from '../../src/os/accounts.js';
import { RuleSet } from '../../src/rules/ruleset.js';
import { Sysfs } from '../../src/uevent/sysfs.js';
import { libudevMessage, kernelFormatMessage } from '../../src/uevent/broadcast.js';
import { createProperties, eventFromProperties } from '../../src/uevent/event.js';

const ACCOUNTS = staticAccounts({ root: 0 }, { root: 0, disk: 6 });
const DEVPATH = '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0/7:0:0:0/block/sdb/sdb1';

function diskEvent() {
  const properties = Object.assign(createProperties(), {
    ACTION: 'add', DEVPATH, SUBSYSTEM: 'block', DEVTYPE: 'partition', DEVNAME: 'sdb1', MAJOR: '8', MINOR: '17', SEQNUM: '9',
  });
  return eventFromProperties(properties, 0, 'kernel');
}

function evaluateWith(rules: ReturnType<typeof compileYamlRules>['rules'], imports: ImportRequest[] = []) {
  return evaluate(new RuleSet(rules), { event: diskEvent(), device: undefined, devRoot: '/dev' }, (request) => {
    imports.push(request);
    return { stdout: '' };
  });
}

describe('DEVNAME in each rule language', () => {
  it('udev rules: the node path in matches, substitutions and program environments', () => {
    const text = [
      'ENV{DEVNAME}=="/dev/sd*", ENV{SEEN}="$env{DEVNAME} %E{DEVNAME} $devnode", RUN+="/bin/mount-it"',
      'ENV{DEVNAME}=="sd*", ENV{RELATIVE_MATCHED}="1"',
      'PROGRAM="/bin/probe", ENV{PROBED}="1"',
    ].join('\n');
    const { rules, diagnostics } = compileUdevRules(text, '50-test.rules', ACCOUNTS);
    expect(diagnostics).toEqual([]);
    const imports: ImportRequest[] = [];
    const { plan } = evaluateWith(rules, imports);
    expect(plan.properties.SEEN).toBe('/dev/sdb1 /dev/sdb1 /dev/sdb1');
    expect(plan.properties.RELATIVE_MATCHED).toBeUndefined();
    expect(plan.run).toEqual([expect.objectContaining({ argv: ['/bin/mount-it'], devnameAsNode: true })]);
    expect(imports.map((r) => r.env.DEVNAME)).toEqual(['/dev/sdb1']);
    // The event itself keeps the kernel's name (the history records what the kernel sent).
    expect(plan.properties.DEVNAME).toBe('sdb1');
  });

  it("hotplugd's YAML and mdev.conf: the kernel's name", () => {
    const yaml = compileYamlRules('rules:\n  - match: { devname: "sd*", env: { DEVNAME: "sdb?" } }\n    set: { env: { SEEN: "$env{DEVNAME}" } }\n    run: [["/bin/mount-it"]]\n', 'r.yaml', ACCOUNTS);
    expect(yaml.diagnostics).toEqual([]);
    const { plan } = evaluateWith(yaml.rules);
    expect(plan.properties.SEEN).toBe('sdb1');
    expect(plan.run).toEqual([{ argv: ['/bin/mount-it'], timeoutMs: undefined, rule: expect.any(String) }]);

    const mdev = compileMdevConf('sd[a-z][0-9] root:disk 660 @/bin/mount-it\n', 'mdev.conf', ACCOUNTS);
    expect(mdev.diagnostics).toEqual([]);
    const fromMdev = evaluateWith(mdev.rules).plan;
    expect(fromMdev.run.length).toBe(1);
    expect(fromMdev.run[0]!.devnameAsNode).toBeUndefined();
  });

  it('a udev RUN program gets DEVNAME=/dev/..., a YAML one the name, in its real environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-devname-'));
    try {
      writeFileSync(join(dir, 'w.js'), "require('fs').writeFileSync(process.argv[2], process.env.DEVNAME)");
      const script = (file: string) => [process.execPath, join(dir, 'w.js'), join(dir, file)];
      const udev = compileUdevRules(`ENV{DEVNAME}=="/dev/sdb1", RUN+="${script('udev').join(' ')}"`, 'u.rules', ACCOUNTS);
      const yaml = compileYamlRules(`rules:\n  - run: [${JSON.stringify(script('yaml'))}]\n`, 'y.yaml', ACCOUNTS);
      const { plan } = evaluateWith([...udev.rules, ...yaml.rules]);
      const executor = new ActionExecutor({ devRoot: '/dev', sysfs: new Sysfs(dir) });
      const results = await executor.runPrograms(diskEvent(), plan);
      expect(results.map((r) => r.ok)).toEqual([true, true]);
      expect(readFileSync(join(dir, 'udev'), 'utf8')).toBe('/dev/sdb1');
      expect(readFileSync(join(dir, 'yaml'), 'utf8')).toBe('sdb1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('libudev listeners get the node path, kernel-format listeners the name', () => {
    const event = { action: 'add', devpath: DEVPATH, subsystem: 'block', properties: diskEvent().properties, tags: [], devnode: '/dev/sdb1' };
    expect(libudevMessage(event).toString('latin1')).toContain('\0DEVNAME=/dev/sdb1\0');
    expect(kernelFormatMessage(event).toString('latin1')).toContain('\0DEVNAME=sdb1\0');
  });
});
