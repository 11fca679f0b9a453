// A stock Mosquitto for the fleet benchmarks: its defaults (no persistence, queues of 1,000
// messages per client), in the benchmark's namespace on a loopback port.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lines } from './system.js';

export async function startBroker(scope, port) {
  const conf = join(scope.dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest stderr\n`);
  const child = scope.spawn('/usr/sbin/mosquitto', ['-c', conf]);
  child.stdout.resume();
  await lines(child, child.stderr).waitFor((l) => l.includes('running'), 10_000, 'mosquitto');
  return child;
}
