// Sends one datagram to the kernel uevent multicast group from user space, the way an
// attacker would. Uses the independent `netlink` package, not hotplugd's own socket.
// Usage: node forge.cjs DEVPATH
const { RawNetlinkSocket } = require('netlink');

const NETLINK_KOBJECT_UEVENT = 15;
const devpath = process.argv[2];
const fields = [`add@${devpath}`, 'ACTION=add', `DEVPATH=${devpath}`, 'SUBSYSTEM=net', 'INTERFACE=forged0', 'SEQNUM=999999999'];
const socket = new RawNetlinkSocket(NETLINK_KOBJECT_UEVENT);
socket.send(Buffer.from(`${fields.join('\0')}\0`), { groups: 1 }, (error) => {
  socket.close();
  if (error) {
    console.error(`forge: ${error.message}`);
    process.exit(1);
  }
});
