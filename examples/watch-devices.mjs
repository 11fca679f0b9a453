// Device events as a typed stream, from hotplugd's Node client: every event the daemon
// processed in the last 10 minutes, then each new one as it is processed, with the links the
// rules made. A daemon restart loses nothing: the client comes back after the last event it
// gave. Ctrl-C ends it.
//
//   node examples/watch-devices.mjs [SUBSYSTEM...]      (default: usb tty block net)
//
// Reads the control socket and history that `hotplugd daemon` uses (root, or a member of
// its --control-group); HOTPLUGD_CONTROL and HOTPLUGD_DB point elsewhere.
import { HotplugClient } from 'hotplugd';

const subsystems = process.argv.length > 2 ? process.argv.slice(2) : ['usb', 'tty', 'block', 'net'];
const client = new HotplugClient({ controlPath: process.env.HOTPLUGD_CONTROL, dbPath: process.env.HOTPLUGD_DB });
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());

const status = await client.status();
console.log(`hotplugd ${status.pid}: ${status.rules.count} rules, ${status.counters.eventsRecorded ?? 0} events recorded`);
for await (const event of client.subscribe({ subsystems, cursor: '10m', signal: stop.signal })) {
  const links = event.symlinks.length > 0 ? ` -> ${event.symlinks.join(' ')}` : '';
  // Names come from whoever built the device: JSON.stringify shows control characters as escapes.
  console.log(`${event.received_at} #${event.id} ${event.action} ${event.subsystem} ${JSON.stringify(event.devname ?? event.devpath)}${links}`);
}
