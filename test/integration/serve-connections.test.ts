// `hotplugd serve` against clients that connect and say nothing: 1,100 silent connections
// against a server held to 1,024 descriptors. A client that asks is still answered, and every
// silent connection is closed within the header time (10 s) and a second.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, Netns, canUseNamespaces, makeTempDir } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

// 1,100 connections that never send a byte; each notes how long the server kept it.
const HOLDERS = String.raw`
import json, selectors, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
sel, opened = selectors.DefaultSelector(), {}
for i in range(count):
    s = socket.create_connection(('127.0.0.1', port))
    s.setblocking(False)
    opened[s] = time.monotonic()
    sel.register(s, selectors.EVENT_READ)
open(sys.argv[3], 'w').close()
lifetimes, deadline = [], time.monotonic() + 20
while opened and time.monotonic() < deadline:
    for key, _ in sel.select(0.05):
        s = key.fileobj
        try:
            gone = s.recv(1) == b''
        except BlockingIOError:
            continue
        except OSError:
            gone = True
        if gone:
            lifetimes.append(time.monotonic() - opened.pop(s))
            sel.unregister(s)
            s.close()
print(json.dumps({'closed': len(lifetimes), 'open': len(opened), 'longest': round(max(lifetimes or [0]), 2)}))
`;

const ASK = String.raw`
import json, sys, urllib.request
with urllib.request.urlopen('http://127.0.0.1:%s/api/status' % sys.argv[1], timeout=10) as r:
    body = json.loads(r.read())
    print(json.dumps({'status': r.status, 'connections': body['connections']}))
`;

describe.runIf(canUseNamespaces())('hotplugd serve and silent clients', () => {
  it('answers a request while 1,100 silent connections are open under a 1,024-descriptor limit, and closes each in time', () => {
    const netns = new Netns('servesilent');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('servesilent');
    cleanups.push(() => dir.remove());
    writeFileSync(join(dir.path, 'holders.py'), HOLDERS);
    writeFileSync(join(dir.path, 'ask.py'), ASK);
    const script = String.raw`
set -u
d="$1"; port=8073
ip link set lo up
prlimit --nofile=1024 node "${CLI}" serve --listen 127.0.0.1:$port --db "$d/none.db" --control "$d/none.sock" > "$d/serve.log" 2>&1 &
serve=$!
for i in $(seq 1 200); do grep -q "Serving the history" "$d/serve.log" && break; sleep 0.05; done
prlimit --nofile=4096 python3 "$d/holders.py" $port 1100 "$d/ready" > "$d/holders.json" &
holders=$!
for i in $(seq 1 400); do [ -e "$d/ready" ] && break; sleep 0.05; done
python3 "$d/ask.py" $port
wait $holders
cat "$d/holders.json"
kill $serve; wait $serve
`;
    const out = execFileSync('ip', ['netns', 'exec', netns.name, 'sh', '-c', script, 'sh', dir.path], { encoding: 'utf8', timeout: 60_000 });
    const [asked, held] = out.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(asked).toMatchObject({ status: 200, connections: expect.objectContaining({ limits: expect.objectContaining({ maxConnections: 256, maxPerAddress: 64, headerTimeoutMs: 10_000 }) }) });
    expect((asked!.connections as { evicted: number }).evicted).toBeGreaterThan(1000);
    expect(held).toMatchObject({ closed: 1100, open: 0 });
    expect(held!.longest as number).toBeLessThanOrEqual(11);
  });
});
