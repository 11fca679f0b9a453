// A network interface's own settings, with iproute2: its MAC address and alternative names
// (net_setup_link's .link file), then its new name (a rule's `name`). In that order, as
// udevd: the settings go to the interface under its kernel name; a rename makes the kernel
// send a `move` event for the new name.
import type { Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import type { ActionResult } from './results.js';
import type { ProgramPool } from './run.js';
import { findProgram } from './system.js';

const IP_CANDIDATES = ['/sbin/ip', '/usr/sbin/ip', '/bin/ip', '/usr/bin/ip'];
const IP_TIMEOUT_MS = 10_000;

/** True when the plan names the event's new interface differently from its name now. */
export function renameWanted(event: Uevent, plan: Plan): boolean {
  const current = event.properties.INTERFACE;
  return plan.name !== null && event.subsystem === 'net' && event.action === 'add' && current !== undefined && current !== plan.name;
}

/** True when there is anything for applyInterface() to do. */
export function interfaceWanted(event: Uevent, plan: Plan): boolean {
  return renameWanted(event, plan) || (plan.interface !== null && event.subsystem === 'net' && event.properties.INTERFACE !== undefined);
}

// The alternative names the interface has now (`ip -j link show`), so only new ones are asked for.
async function currentAltnames(pool: ProgramPool, ip: string, ifname: string): Promise<string[]> {
  const shown = await pool.run([ip, '-j', 'link', 'show', 'dev', ifname], { env: {}, timeoutMs: IP_TIMEOUT_MS, maxOutputBytes: 64 * 1024 });
  try {
    const [link] = JSON.parse(shown.stdout ?? '') as { altnames?: unknown }[];
    return Array.isArray(link?.altnames) ? link.altnames.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

/** MAC address, alternative names, then rename: one result for each that was wanted. */
export async function applyInterface(pool: ProgramPool, event: Uevent, plan: Plan, ip = findProgram(IP_CANDIDATES)): Promise<ActionResult[]> {
  if (!interfaceWanted(event, plan)) return [];
  const current = event.properties.INTERFACE as string;
  const steps: { kind: 'mac-address' | 'altname' | 'rename'; target: string; rule: string | null; args: string[] }[] = [];
  const settings = plan.interface;
  if (settings?.mac) steps.push({ kind: 'mac-address', target: `${current} ${settings.mac}`, rule: settings.rule, args: ['link', 'set', 'dev', current, 'address', settings.mac] });
  if (settings && settings.altnames.length > 0 && ip !== null) {
    const have = new Set(await currentAltnames(pool, ip, current));
    const wanted = settings.altnames.filter((n) => !have.has(n));
    // One request for all of them, as udevd sends them: the kernel takes all or none.
    if (wanted.length > 0) steps.push({ kind: 'altname', target: `${current} ${wanted.join(' ')}`, rule: settings.rule, args: ['link', 'property', 'add', 'dev', current, ...wanted.flatMap((n) => ['altname', n])] });
  }
  // Every name follows a keyword (dev, name, altname), so ip reads it as a value even if it starts with "-".
  if (renameWanted(event, plan)) steps.push({ kind: 'rename', target: `${current} -> ${plan.name}`, rule: null, args: ['link', 'set', 'dev', current, 'name', plan.name as string] });
  const results: ActionResult[] = [];
  for (const step of steps) {
    if (ip === null) {
      results.push({ kind: step.kind, target: step.target, rule: step.rule, ok: false, error: 'ip (iproute2) not found', durationMs: 0 });
      continue;
    }
    const result = await pool.run([ip, ...step.args], { env: {}, timeoutMs: IP_TIMEOUT_MS });
    results.push({ ...result, kind: step.kind, target: step.target, rule: step.rule });
  }
  return results;
}
