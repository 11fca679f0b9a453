// Unix stream sockets: whether a live process answers on a socket file (so it must not be
// taken over) or it is a file left behind.
import { createConnection } from 'node:net';

/**
 * True when a daemon answers on the unix socket (so it must not be replaced). A stream
 * connect to a live SEQPACKET listener (udev's control socket) fails with EPROTOTYPE; a
 * socket file left behind refuses with ECONNREFUSED.
 */
export function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EPROTOTYPE'));
  });
}
