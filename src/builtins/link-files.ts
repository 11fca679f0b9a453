// systemd's .link files (systemd.link(5)), read as udev's net_setup_link reads them: from
// /etc/systemd/network, /run/systemd/network, /usr/local/lib/systemd/network and
// /usr/lib/systemd/network (a file overrides one of the same name further down the list,
// an empty one or a link to /dev/null masks it), in file-name order; the first whose
// [Match] fits an interface is its configuration. A file with errors is reported as
// file:line and skipped, as udevd does.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { fnmatchAny } from '../text/fnmatch.js';
import { parseMac, validAltname } from './link-settings.js';

export const LINK_DIRS = ['/etc/systemd/network', '/run/systemd/network', '/usr/local/lib/systemd/network', '/usr/lib/systemd/network', '/lib/systemd/network'];

/** What an interface is matched against. */
export interface LinkFacts {
  originalName: string;
  mac: string | undefined;
  path: string | undefined;
  driver: string | undefined;
  type: string | undefined;
  kind: string | undefined;
  properties: Readonly<Record<string, string>>;
  virtualization: string;
  architecture: string;
  host: string;
  kernelCommandLine: string;
}

export interface LinkConfig {
  file: string;
  matches: ((facts: LinkFacts) => boolean)[];
  namePolicy: string[];
  name: string | undefined;
  alternativeNamesPolicy: string[];
  /** AlternativeName=: names given as they are. */
  alternativeNames: string[];
  macAddressPolicy: 'persistent' | 'random' | 'none' | undefined;
  /** MACAddress=: the address to set when no policy makes one. */
  mac: string | undefined;
}

export interface LinkLoad {
  configs: LinkConfig[];
  /** `file:line: message`, for files that were skipped or keys that were ignored. */
  problems: string[];
}

/** A whitespace-separated list of globs, `!` in front of the first negating all of it (systemd's rule). */
function globList(value: string): (text: string | undefined) => boolean {
  const negate = value.startsWith('!');
  const patterns = (negate ? value.slice(1) : value).split(/\s+/).filter(Boolean);
  const matches = fnmatchAny(patterns);
  return (text) => (text !== undefined && matches(text)) !== negate;
}

function macList(value: string): (mac: string | undefined) => boolean {
  const wanted = new Set(value.split(/\s+/).filter(Boolean).map((m) => m.toLowerCase()));
  return (mac) => mac !== undefined && wanted.has(mac.toLowerCase());
}

/** The [Match] keys: each compiles to a test of the interface's facts. */
const MATCH_KEYS: Record<string, (value: string) => (facts: LinkFacts) => boolean> = {
  MACAddress: (v) => { const m = macList(v); return (f) => m(f.mac); },
  OriginalName: (v) => { const g = globList(v); return (f) => g(f.originalName); },
  Path: (v) => { const g = globList(v); return (f) => g(f.path); },
  Driver: (v) => { const g = globList(v); return (f) => g(f.driver); },
  Type: (v) => { const g = globList(v); return (f) => g(f.type); },
  Kind: (v) => { const g = globList(v); return (f) => g(f.kind); },
  Property: (v) => {
    const pairs = v.split(/\s+/).filter(Boolean).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const);
    return (f) => pairs.every(([key, glob]) => f.properties[key] !== undefined && fnmatchAny([glob])(f.properties[key] as string));
  },
  Virtualization: (v) => (f) => (v === 'yes' || v === 'true' ? f.virtualization !== 'none' : v === 'no' || v === 'false' ? f.virtualization === 'none' : globList(v)(f.virtualization)),
  Architecture: (v) => { const g = globList(v); return (f) => g(f.architecture); },
  Host: (v) => { const g = globList(v); return (f) => g(f.host); },
  KernelCommandLine: (v) => (f) => (v.startsWith('!') ? !f.kernelCommandLine.split(/\s+/).includes(v.slice(1)) : f.kernelCommandLine.split(/\s+/).includes(v)),
};

const POLICIES = new Set(['kernel', 'database', 'onboard', 'slot', 'path', 'mac', 'keep']);

/** Parses one .link file; problems name the file and line. */
export function parseLinkFile(file: string, text: string): { config?: LinkConfig; problems: string[] } {
  const problems: string[] = [];
  const config: LinkConfig = { file, matches: [], namePolicy: [], name: undefined, alternativeNamesPolicy: [], alternativeNames: [], macAddressPolicy: undefined, mac: undefined };
  let section = '';
  let broken = false;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const at = `${file}:${index + 1}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      if (!['Match', 'Link', 'SR-IOV'].includes(section)) problems.push(`${at}: unknown section [${section}]; ignored`);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      problems.push(`${at}: expected KEY=VALUE, got ${JSON.stringify(line)}`);
      broken = true;
      return;
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (section === 'Match') {
      const compile = MATCH_KEYS[key];
      if (compile) config.matches.push(compile(value));
      else {
        // Ignoring a [Match] key would make the file match more than it says.
        problems.push(`${at}: [Match] ${key}= is not supported by hotplugd; the file is skipped`);
        broken = true;
      }
    } else if (section === 'Link') {
      if (key === 'NamePolicy' || key === 'AlternativeNamesPolicy') {
        const policies = value.split(/\s+/).filter(Boolean);
        const unknown = policies.filter((p) => !POLICIES.has(p));
        if (unknown.length > 0) problems.push(`${at}: unknown ${key} ${unknown.join(', ')}; ignored`);
        const known = policies.filter((p) => POLICIES.has(p));
        if (key === 'NamePolicy') config.namePolicy = known;
        else config.alternativeNamesPolicy = known;
      } else if (key === 'Name') config.name = value;
      else if (key === 'MACAddressPolicy') {
        if (value === 'persistent' || value === 'random' || value === 'none') config.macAddressPolicy = value;
        else problems.push(`${at}: unknown MACAddressPolicy ${value}; ignored`);
      } else if (key === 'MACAddress') {
        const mac = parseMac(value);
        if (mac !== undefined || value === '') config.mac = mac;
        else problems.push(`${at}: MACAddress=${value} is not a MAC address; ignored`);
      } else if (key === 'AlternativeName') {
        // As systemd: an empty value clears the list; an invalid name is ignored.
        if (value === '') config.alternativeNames = [];
        for (const name of value.split(/\s+/).filter(Boolean)) {
          if (validAltname(name)) config.alternativeNames.push(name);
          else problems.push(`${at}: "${name}" is not a valid alternative name; ignored`);
        }
      }
      // Other [Link] settings (MTU, WakeOnLan, offloads...) are read past: see docs/udev.md.
    }
  });
  return broken ? { problems } : { config, problems };
}

/** The .link files of `dirs` (first dir wins for a name), masked ones dropped, in file-name order. */
export function loadLinkFiles(dirs: readonly string[] = LINK_DIRS): LinkLoad {
  const chosen = new Map<string, string>();
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (name.endsWith('.link') && !chosen.has(name)) chosen.set(name, `${dir}/${name}`);
  }
  const configs: LinkConfig[] = [];
  const problems: string[] = [];
  for (const name of [...chosen.keys()].sort()) {
    const path = chosen.get(name) as string;
    try {
      if (realpathSync(path) === '/dev/null' || statSync(path).size === 0) continue; // masked
      const parsed = parseLinkFile(path, readFileSync(path, 'utf8'));
      problems.push(...parsed.problems);
      if (parsed.config) configs.push(parsed.config);
    } catch (error) {
      problems.push(`${path}: ${(error as Error).message}; skipped`);
    }
  }
  return { configs, problems };
}

let cache: { key: string; load: LinkLoad } | undefined;
let report: (problems: string[]) => void = (problems) => {
  for (const problem of problems) process.stderr.write(`${problem}\n`);
};

/** Where the problems of each (re)load of the .link files go (the daemon logs them). */
export function reportLinkFileProblems(to: (problems: string[]) => void): void {
  report = to;
}

/** loadLinkFiles(), read again only when a file or directory changed (net_setup_link runs on every interface add). */
export function currentLinkFiles(dirs: readonly string[] = LINK_DIRS): LinkLoad {
  const parts: string[] = [];
  for (const dir of dirs) {
    const stat = statSync(dir, { throwIfNoEntry: false });
    if (stat === undefined) continue;
    parts.push(`${dir}:${stat.mtimeMs}`);
    for (const name of readdirSync(dir)) if (name.endsWith('.link')) parts.push(`${name}:${statSync(`${dir}/${name}`, { throwIfNoEntry: false })?.mtimeMs}`);
  }
  const key = parts.join('|');
  if (cache?.key !== key) {
    cache = { key, load: loadLinkFiles(dirs) };
    if (cache.load.problems.length > 0) report(cache.load.problems);
  }
  return cache.load;
}
