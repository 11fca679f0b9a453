// Runs inside a private network and mount namespace (tmpfs on /run/udev): for every device
// of the machine visible there, udev's own answer (`udevadm test`, Debian's rules) beside
// hotplugd's (the same rules, evaluated in-process with its programs run as the daemon
// runs them). Prints one JSON line per device: { devpath, udev, hotplugd } with the final
// properties, links and tags of each. Usage: node differential.mjs REPO [CONCURRENCY]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = process.argv[2];
const concurrency = Number(process.argv[3] ?? 8);
const { Sysfs } = await import(`${repo}/dist/uevent/sysfs.js`);
const { loadRules } = await import(`${repo}/dist/frontends/load.js`);
const { evaluateAsync } = await import(`${repo}/dist/engine/evaluate.js`);
const { runProgram, importOutcome } = await import(`${repo}/dist/actions/run.js`);
const { machineView } = await import(`${repo}/dist/rules/system-view.js`);
const { hypervisorSignature } = await import(`${repo}/dist/os/system-calls.js`);
const { UDEV_RULES_DIRS } = await import(`${repo}/dist/defaults.js`);

const sysfs = new Sysfs('/sys');
const { ruleSet } = loadRules(UDEV_RULES_DIRS);
const system = machineView('/sys', '/proc', { cpuidSignature: hypervisorSignature });

/** The block udevadm test prints last: the properties, then `run: '...'` lines (as RUN, one per line). */
function parseUdevadm(text) {
  const block = text.slice(text.lastIndexOf('\n\n') + 2);
  const properties = {};
  const run = [];
  for (const line of block.split('\n')) {
    const program = /^run: '(.*)'$/.exec(line);
    if (program) run.push(program[1]);
    else {
      const eq = line.indexOf('=');
      if (eq > 0) properties[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  if (run.length > 0) properties.RUN = run.sort().join('\n');
  return properties;
}

async function udev(devpath) {
  try {
    const { stdout } = await run('udevadm', ['test', '--action=add', devpath], { maxBuffer: 64 << 20 });
    return parseUdevadm(stdout);
  } catch (error) {
    return { error: String(error.stderr ?? error.message).split('\n').slice(-3).join(' ') };
  }
}

async function hotplugd(devpath) {
  const event = sysfs.synthesizeEvent(devpath, 'add', 'kernel');
  if (!event) return { error: 'not a device' };
  const { plan } = await evaluateAsync(ruleSet, { event, device: sysfs.device(devpath), devRoot: '/dev', system }, async (request) => {
    const ran = await runProgram(request.argv, { env: request.env, timeoutMs: request.timeoutMs, rule: request.rule });
    // Builds before importOutcome existed (compared for the before/after figure) take success alone.
    return importOutcome ? importOutcome(ran, request.emptyExitCodes).output : ran.ok ? { stdout: ran.stdout ?? '' } : undefined;
  });
  const properties = { ...plan.properties };
  if (properties.DEVNAME !== undefined && plan.devnode !== null) properties.DEVNAME = plan.devnode;
  if (plan.symlinks.length > 0) properties.DEVLINKS = [...plan.symlinks].sort().join(' ');
  // udev lists RUN{builtin}="kmod load" as such; hotplugd plans the module it loads.
  const run = [...plan.modules.map(() => 'kmod load'), ...plan.run.map((r) => r.argv.join(' '))];
  if (run.length > 0) properties.RUN = run.sort().join('\n');
  return properties;
}

const devices = sysfs.enumerate();
let next = 0;
async function worker() {
  while (next < devices.length) {
    const devpath = devices[next++];
    const [u, h] = await Promise.all([udev(devpath), hotplugd(devpath)]);
    process.stdout.write(`${JSON.stringify({ devpath, udev: u, hotplugd: h })}\n`);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
