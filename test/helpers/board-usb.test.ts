// The comparison of two board runs must not call the kernel's own choices a difference.
import { describe, expect, it } from 'vitest';
import { differences, eventDifferences, parseExportDb, parseMonitor } from './board-usb.js';

const all = () => true;

describe('comparing a udevd run with a hotplugd run', () => {
  it('takes wakeup sources numbered differently by the kernel on two boots as the same device', () => {
    // As CI saw it: the same hub port's wakeup source was wakeup13 under udevd, wakeup14 under hotplugd.
    const db = (n: number) => `P: /devices/pci0000:00/0000:00:06.0/usb1/1-4/wakeup/wakeup${n}\nE: DEVPATH=/devices/pci0000:00/0000:00:06.0/usb1/1-4/wakeup/wakeup${n}\nE: SUBSYSTEM=wakeup\n\n`;
    const udevd = { devices: parseExportDb(db(13)), dev: new Map() };
    const hotplugd = { devices: parseExportDb(db(14)), dev: new Map() };
    expect(differences(udevd, hotplugd, all)).toEqual([]);
    const heard = (n: number) => parseMonitor(`UDEV  [1.0] add /devices/pci0000:00/0000:00:06.0/usb1/1-4/wakeup/wakeup${n} (wakeup)\nACTION=add\nDEVPATH=/devices/pci0000:00/0000:00:06.0/usb1/1-4/wakeup/wakeup${n}\nSUBSYSTEM=wakeup\n\n`);
    expect(eventDifferences(heard(13), heard(14), all)).toEqual([]);
  });

  it('takes input devices numbered differently by the kernel on two boots as the same device', () => {
    // As CI saw it: the keyboard's input device was input5 under udevd, input6 under hotplugd (the
    // kernel counts every input device it ever allocated, a probe that gave up included).
    const kbd = '/devices/pci0000:00/0000:00:06.0/usb1/1-4/1-4:1.0/0003:0627:0001.0001/input';
    const db = (n: number) =>
      [`${kbd}/input${n}`, `${kbd}/input${n}/event4`, `${kbd}/input${n}/input${n}::capslock`].map((p) => `P: ${p}\nE: DEVPATH=${p}\n\n`).join('');
    const udevd = { devices: parseExportDb(db(5)), dev: new Map() };
    const hotplugd = { devices: parseExportDb(db(6)), dev: new Map() };
    expect(differences(udevd, hotplugd, all)).toEqual([]);
    const heard = (n: number) => parseMonitor(`UDEV  [1.0] add ${kbd}/input${n}/input${n}::capslock (leds)\nACTION=add\nDEVPATH=${kbd}/input${n}/input${n}::capslock\n\n`);
    expect(eventDifferences(heard(5), heard(6), all)).toEqual([]);
    // Two input devices of one parent stay two.
    expect(parseExportDb(db(5) + db(6)).size).toBe(6);
  });

  it('still tells a device present in one run only, and a property that differs', () => {
    const udevd = { devices: parseExportDb('P: /devices/a\nE: ID_SERIAL=X-0:0\n\nP: /devices/b\nE: A=1\n\n'), dev: new Map() };
    const hotplugd = { devices: parseExportDb('P: /devices/a\nE: ID_SERIAL=X\n\n'), dev: new Map() };
    expect(differences(udevd, hotplugd, all)).toEqual(['/devices/a ID_SERIAL: X-0:0 | X', '/devices/b: in udevd only']);
  });
});

describe('what a listener heard', () => {
  it('keeps the devpath as heard, for comparison with the same run\'s history', () => {
    const [event] = parseMonitor('UDEV  [1.0] add /devices/x/wakeup/wakeup14 (wakeup)\nACTION=add\nDEVPATH=/devices/x/wakeup/wakeup14\n\n');
    expect(event!.devpath).toBe('/devices/x/wakeup/wakeup14');
  });
});
