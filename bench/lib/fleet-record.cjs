// One forwarded record as a board sends it (an event of ~1 KB with one action), for the fleet
// benchmarks' simulated boards. CommonJS: the publishers are `node -e` scripts.
exports.record = function record(board, id, at) {
  const t = new Date(at + id).toISOString();
  const devpath = '/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0';
  return {
    type: 'event', board, id, after: id - 1, seqnum: id, action: 'change', devpath, subsystem: 'tty', devtype: null, devname: '/dev/ttyUSB0', driver: null,
    major: 188, minor: 0, source: 'kernel', received_at: t,
    properties: { ACTION: 'change', DEVPATH: devpath, SUBSYSTEM: 'tty', DEVNAME: 'ttyUSB0', MAJOR: '188', MINOR: '0', SEQNUM: String(id) },
    device: 'usb:0403:6001:A10KXYZ' + board,
    result: { properties: { ID_VENDOR: 'FTDI', ID_MODEL: 'FT232R_USB_UART', ID_SERIAL: 'FTDI_FT232R_USB_UART_A10KXYZ' }, symlinks: ['/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KXYZ-if00-port0'], tags: [] },
    rules: ['serial.yaml:4'],
    actions: [{ id, after: id - 1, kind: 'symlink', target: '/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KXYZ-if00-port0', rule: 'serial.yaml:4', ok: true, error: null, exit_code: null, duration_ms: 0.2, finished_at: t }],
  };
};
