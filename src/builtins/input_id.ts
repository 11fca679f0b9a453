// input_id: what kind of input device this is (keyboard, mouse, touchpad, touchscreen,
// tablet, joystick, switch, accelerometer), read from the kernel's capability bitmaps.
import { arch } from 'node:os';
import type { DeviceView } from '../uevent/sysfs.js';
import { deviceChain } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

const WORD_BITS = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(arch()) ? 64n : 32n;

/** A capability bitmap as sysfs prints it: hex words, most significant first. */
export function parseBitmap(text: string | undefined): (bit: number) => boolean {
  const words = (text ?? '').trim().split(/\s+/).filter((w) => /^[0-9a-f]+$/i.test(w)).reverse().map((w) => BigInt(`0x${w}`));
  return (bit) => {
    const word = words[Math.floor(bit / Number(WORD_BITS))];
    return word !== undefined && ((word >> (BigInt(bit) % WORD_BITS)) & 1n) === 1n;
  };
}

const EV = { KEY: 1, REL: 2, ABS: 3, SW: 5 };
const BTN = { MISC: 0x100, MOUSE: 0x110, JOYSTICK: 0x120, GAMEPAD: 0x130, DIGI: 0x140, TOOL_PEN: 0x140, TOOL_FINGER: 0x145, TOUCH: 0x14a, STYLUS: 0x14b };
const PROP = { POINTING_STICK: 5, ACCELEROMETER: 6 };

function range(test: (bit: number) => boolean, from: number, to: number): boolean {
  for (let b = from; b < to; b++) if (test(b)) return true;
  return false;
}

function classify(input: DeviceView): Record<string, string> {
  const cap = (name: string) => parseBitmap(input.attribute(`capabilities/${name}`));
  const ev = cap('ev');
  const key = cap('key');
  const rel = cap('rel');
  const abs = cap('abs');
  const props = parseBitmap(input.attribute('properties'));
  const p: Record<string, string> = { ID_INPUT: '1' };
  if (props(PROP.ACCELEROMETER)) {
    p.ID_INPUT_ACCELEROMETER = '1';
    return p;
  }
  if (props(PROP.POINTING_STICK)) p.ID_INPUT_POINTINGSTICK = '1';
  if (ev(EV.SW)) p.ID_INPUT_SWITCH = '1';
  const hasXY = (test: (bit: number) => boolean) => test(0) && test(1);
  if (ev(EV.ABS) && hasXY(abs)) {
    if (key(BTN.TOOL_PEN) || key(BTN.STYLUS)) p.ID_INPUT_TABLET = '1';
    else if (key(BTN.TOOL_FINGER) && !key(BTN.TOOL_PEN)) p.ID_INPUT_TOUCHPAD = '1';
    else if (key(BTN.MOUSE)) p.ID_INPUT_MOUSE = '1';
    else if (key(BTN.TOUCH)) p.ID_INPUT_TOUCHSCREEN = '1';
    else if (range(key, BTN.JOYSTICK, BTN.DIGI)) p.ID_INPUT_JOYSTICK = '1';
  }
  if (ev(EV.REL) && hasXY(rel) && key(BTN.MOUSE)) p.ID_INPUT_MOUSE = '1';
  if (range(key, BTN.JOYSTICK, BTN.DIGI) && !p.ID_INPUT_TOUCHPAD) p.ID_INPUT_JOYSTICK = '1';
  if (ev(EV.KEY)) {
    // Any key below the buttons is a key; ESC and the first row of letters make a keyboard.
    if (range(key, 1, BTN.MISC)) p.ID_INPUT_KEY = '1';
    let keyboard = true;
    for (let b = 1; b < 32 && keyboard; b++) keyboard = key(b);
    if (keyboard) p.ID_INPUT_KEYBOARD = '1';
  }
  return p;
}

export const inputId: Builtin = {
  name: 'input_id',
  summary: 'ID_INPUT_*: the kind of input device, from its capabilities',
  run(_argv, context) {
    // The capabilities live on the input device (inputN); event and mouse nodes are its children.
    const input = deviceChain(context).find((l) => l.subsystem === 'input' && l.view.attribute('capabilities/ev') !== undefined);
    if (input === undefined) return { failed: 'input_id: no input device with capabilities' };
    return { properties: classify(input.view) };
  },
};
