// Renaming a network interface (a rule's `name` on a `net` device) with iproute2's
// `ip link set dev OLD name NEW`. The kernel then sends a `move` event for the new name.
import type { Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import type { ActionResult } from './results.js';
import type { ProgramPool } from './run.js';
import { findProgram } from './system.js';

const IP_CANDIDATES = ['/sbin/ip', '/usr/sbin/ip', '/bin/ip', '/usr/bin/ip'];
const RENAME_TIMEOUT_MS = 10_000;

/** True when the plan names the event's new interface differently from its name now. */
export function renameWanted(event: Uevent, plan: Plan): boolean {
  const current = event.properties.INTERFACE;
  return plan.name !== null && event.subsystem === 'net' && event.action === 'add' && current !== undefined && current !== plan.name;
}

/** Renames the event's interface when the plan names it differently; one result, or none. */
export async function renameInterface(pool: ProgramPool, event: Uevent, plan: Plan, ip = findProgram(IP_CANDIDATES)): Promise<ActionResult | undefined> {
  if (!renameWanted(event, plan)) return undefined;
  const current = event.properties.INTERFACE!;
  const target = `${current} -> ${plan.name}`;
  if (ip === null) return { kind: 'rename', target, rule: null, ok: false, error: 'ip (iproute2) not found', durationMs: 0 };
  // Both names follow keywords (dev, name), so ip reads them as values even if they start with "-".
  const result = await pool.run([ip, 'link', 'set', 'dev', current, 'name', plan.name!], { env: {}, timeoutMs: RENAME_TIMEOUT_MS });
  return { ...result, kind: 'rename', target };
}
