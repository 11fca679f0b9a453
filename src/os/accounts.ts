// Users and groups named in rules, resolved once at load time from /etc/passwd and
// /etc/group (or another root in tests): an unknown name is a load error, not a per-event one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A user or group resolved at load time. */
export interface Account {
  name: string;
  id: number;
}

export interface Accounts {
  user(nameOrId: string): Account | undefined;
  group(nameOrId: string): Account | undefined;
}

function parseDatabase(text: string): Map<string, number> {
  const byName = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id)) byName.set(name, Number(id));
  }
  return byName;
}

function readDatabase(path: string): Map<string, number> {
  try {
    return parseDatabase(readFileSync(path, 'utf8'));
  } catch {
    return new Map();
  }
}

function resolve(names: Map<string, number>, nameOrId: string): Account | undefined {
  if (/^\d+$/.test(nameOrId)) return { name: nameOrId, id: Number(nameOrId) };
  const id = names.get(nameOrId);
  return id === undefined ? undefined : { name: nameOrId, id };
}

/** Accounts from `<etc>/passwd` and `<etc>/group`, read now. */
export function loadAccounts(etc = '/etc'): Accounts {
  const users = readDatabase(join(etc, 'passwd'));
  const groups = readDatabase(join(etc, 'group'));
  return {
    user: (nameOrId) => resolve(users, nameOrId),
    group: (nameOrId) => resolve(groups, nameOrId),
  };
}

/** Fixed accounts, for tests and benchmarks. */
export function staticAccounts(users: Record<string, number>, groups: Record<string, number>): Accounts {
  const userMap = new Map(Object.entries(users));
  const groupMap = new Map(Object.entries(groups));
  return {
    user: (nameOrId) => resolve(userMap, nameOrId),
    group: (nameOrId) => resolve(groupMap, nameOrId),
  };
}

/** True when the user is listed as a member of the group in `<etc>/group` (read now). */
export function isSupplementaryMember(uid: number, gid: number, etc = '/etc'): boolean {
  let passwd: string;
  let group: string;
  try {
    passwd = readFileSync(join(etc, 'passwd'), 'utf8');
    group = readFileSync(join(etc, 'group'), 'utf8');
  } catch {
    return false;
  }
  const user = passwd.split('\n').map((line) => line.split(':')).find((fields) => fields[2] === String(uid))?.[0];
  if (user === undefined) return false;
  const entry = group.split('\n').map((line) => line.split(':')).find((fields) => fields[2] === String(gid));
  return (entry?.[3] ?? '').split(',').includes(user);
}
