// One rule of a YAML rule file → the compiled model: its match, assignments, programs,
// jobs and modules, each problem reported with file:line:column.
import { basename } from 'node:path';
import { MAX_TIMEOUT_MS, parseDurationMs } from '../text/units.js';
import type { Accounts } from '../os/accounts.js';
import { compileTemplate, TemplateError, type Template } from '../rules/format.js';
import { compileValueMatcher, type ValueMatcher } from '../rules/match.js';
import {
  DEVICE_FIELDS, PARENT_FIELDS, type Account, type Assignment, type Condition, type DeviceField,
  type Diagnostic, type ParentCondition, type ParentField, type RestartPolicy, type Rule, RESTART_POLICIES,
} from '../rules/model.js';
import { isMapNode as isMap, isSeqNode as isSeq, type TreeNode, type YamlNode, type YamlReader } from './yaml-nodes.js';
import { exactValuesOf } from '../rules/ruleset.js';

const RULE_KEYS = ['name', 'description', 'match', 'debounce', 'set', 'append', 'remove', 'run', 'load_module', 'job', 'systemd_unit', 'stop'] as const;
const JOB_KEYS = ['argv', 'restart', 'stop_signal'] as const;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'];
const MATCH_KEYS = [...DEVICE_FIELDS, 'env', 'attrs', 'tags', 'exists', 'parent'] as const;
const PARENT_KEYS = [...PARENT_FIELDS, 'attrs'] as const;
const SET_KEYS = ['env', 'symlink', 'link_priority', 'name', 'owner', 'group', 'mode', 'tags', 'attrs', 'authorize'] as const;
const APPEND_KEYS = ['env'] as const;
const REMOVE_KEYS = ['env', 'symlink', 'tags'] as const;
const RUN_KEYS = ['argv', 'timeout', 'import'] as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Cheap tests first: the first failing key ends a rule, and parents cost sysfs reads.
const CONDITION_COST: Partial<Record<Condition['kind'], number>> = { field: 0, env: 1, tag: 1, attr: 2, exists: 3, parent: 4 };

export class RuleCompiler {
  #reader: YamlReader;
  #accounts: Accounts;
  #conditions: Condition[] = [];
  #assignments: Assignment[] = [];

  constructor(reader: YamlReader, accounts: Accounts) {
    this.#reader = reader;
    this.#accounts = accounts;
  }

  compile(node: YamlNode): Rule | undefined {
    const r = this.#reader;
    const pairs = r.knownPairs(node, 'a rule', RULE_KEYS);
    if (!isMap(node)) return undefined;
    const at = r.at(node);
    let name = `${basename(r.file)}:${at.line}`;
    let stop = false;
    let debounceMs: number | undefined;
    for (const { key, value } of pairs) {
      if (key === 'name') name = r.string(value, 'name') ?? name;
      else if (key === 'description') r.string(value, 'description');
      else if (key === 'match') this.#match(value);
      else if (key === 'set') this.#set(value);
      else if (key === 'append') this.#append(value);
      else if (key === 'remove') this.#remove(value);
      else if (key === 'run') this.#run(value);
      else if (key === 'load_module') this.#loadModule(value);
      else if (key === 'job') this.#job(value);
      else if (key === 'systemd_unit') {
        for (const item of r.strings(value, 'systemd_unit') ?? []) {
          const unit = this.#template(item.node, item.value, 'systemd_unit');
          if (unit) this.#assignments.push({ kind: 'unit', at: r.at(item.node), unit });
        }
      }
      else if (key === 'stop') stop = r.boolean(value, 'stop') ?? false;
      else if (key === 'debounce') debounceMs = this.#duration(value, 'debounce');
    }
    if (debounceMs !== undefined && stop) r.error(node, `rule "${name}": "debounce" and "stop" cannot go together (a debounced rule acts later, when later rules have run)`);
    if (!pairs.some((p) => p.key === 'match')) r.warn(node, `rule "${name}" has no "match": it applies to every event`);
    const conditions = this.#conditions.sort((a, b) => (CONDITION_COST[a.kind] ?? 9) - (CONDITION_COST[b.kind] ?? 9));
    return {
      name,
      at,
      conditions,
      assignments: this.#assignments,
      stop,
      ...(debounceMs ? { debounceMs } : {}),
      actions: exactValuesOf(conditions, 'action'),
      subsystems: exactValuesOf(conditions, 'subsystem'),
    };
  }

  #matcher(node: YamlNode, what: string, trim = false): ValueMatcher | undefined {
    const values = this.#reader.strings(node, what);
    if (values === undefined) return undefined;
    try {
      return compileValueMatcher(
        values.map((v) => v.value),
        { trimTrailingWhitespace: trim },
      );
    } catch (error) {
      this.#reader.error(node, `${what}: ${(error as Error).message}`);
      return undefined;
    }
  }

  #match(node: YamlNode): void {
    const r = this.#reader;
    for (const { key, keyNode, value } of r.knownPairs(node, 'match', MATCH_KEYS)) {
      const at = r.at(keyNode);
      if (key === 'env') {
        for (const pair of r.namedPairs(value, 'match.env')) {
          const matcher = this.#matcher(pair.value, `env.${pair.key}`);
          if (matcher) this.#conditions.push({ kind: 'env', key: `env.${pair.key}`, at: r.at(pair.keyNode), name: pair.key, matcher });
        }
      } else if (key === 'attrs') {
        for (const c of this.#attrConditions(value, 'attrs')) this.#conditions.push(c);
      } else if (key === 'tags') {
        const matcher = this.#matcher(value, 'tags');
        if (matcher) this.#conditions.push({ kind: 'tag', key, at, matcher });
      } else if (key === 'exists') {
        for (const item of r.strings(value, 'exists') ?? []) {
          const expect = !item.value.startsWith('!');
          const path = this.#template(item.node, expect ? item.value : item.value.slice(1), 'exists');
          if (path) this.#conditions.push({ kind: 'exists', key: `exists ${item.value}`, at: r.at(item.node), path, expect });
        }
      } else if (key === 'parent') {
        const blocks = isSeq(value) ? (r.list(value, 'parent') ?? []) : [value];
        for (const block of blocks) this.#parent(block, r.at(block));
      } else {
        const matcher = this.#matcher(value, key);
        if (matcher) this.#conditions.push({ kind: 'field', key, at, field: key as DeviceField, matcher });
      }
    }
  }

  #attrConditions(node: YamlNode, prefix: string): Extract<Condition | ParentCondition, { kind: 'attr' }>[] {
    const r = this.#reader;
    const out: Extract<Condition | ParentCondition, { kind: 'attr' }>[] = [];
    for (const pair of r.namedPairs(node, prefix)) {
      if (pair.key.startsWith('/') || pair.key.split('/').includes('..')) {
        r.error(pair.keyNode, `${prefix}.${pair.key}: attribute names are relative to the device and cannot contain ".."`);
        continue;
      }
      const matcher = this.#matcher(pair.value, `${prefix}.${pair.key}`, true);
      if (matcher) out.push({ kind: 'attr', key: `${prefix}.${pair.key}`, at: r.at(pair.keyNode), name: pair.key, matcher });
    }
    return out;
  }

  #parent(node: YamlNode, at: Condition['at']): void {
    const r = this.#reader;
    const conditions: ParentCondition[] = [];
    for (const { key, keyNode, value } of r.knownPairs(node, 'match.parent', PARENT_KEYS)) {
      if (key === 'attrs') {
        conditions.push(...this.#attrConditions(value, 'parent.attrs'));
        continue;
      }
      const matcher = this.#matcher(value, `parent.${key}`);
      if (matcher) conditions.push({ kind: 'field', key: `parent.${key}`, at: r.at(keyNode), field: key as ParentField, matcher });
    }
    if (conditions.length > 0) this.#conditions.push({ kind: 'parent', key: 'parent', at, conditions });
  }

  #template(node: YamlNode, text: string, what: string): Template | undefined {
    try {
      return compileTemplate(text);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      const at = this.#reader.at(node, this.#reader.textOffset(node) + error.offset);
      this.#reader.report('error', at, `${what}: ${error.message}`);
      return undefined;
    }
  }

  #templateOf(node: YamlNode, what: string): Template | undefined {
    const text = this.#reader.string(node, what);
    return text === undefined ? undefined : this.#template(node, text, what);
  }

  #set(node: YamlNode): void {
    const r = this.#reader;
    for (const { key, keyNode, value } of r.knownPairs(node, 'set', SET_KEYS)) {
      const at = r.at(keyNode);
      if (key === 'env') this.#env(value, 'set', 'set.env');
      else if (key === 'symlink') {
        for (const item of r.strings(value, 'symlink') ?? []) {
          const template = this.#symlinkTemplate(item.node, item.value);
          if (template) this.#assignments.push({ kind: 'symlink', at: r.at(item.node), op: 'add', value: template, escape: 'substitutions' });
        }
      } else if (key === 'link_priority') {
        const priority = r.integer(value, 'link_priority');
        if (priority !== undefined) this.#assignments.push({ kind: 'link-priority', at, priority });
      } else if (key === 'name') {
        const template = this.#templateOf(value, 'name');
        if (template) this.#assignments.push({ kind: 'name', at, value: template, escape: 'substitutions' });
      } else if (key === 'owner' || key === 'group') {
        const account = this.#account(value, key);
        if (account) this.#assignments.push({ kind: key, at, account });
      } else if (key === 'mode') {
        const text = r.string(value, 'mode');
        if (text !== undefined && /^0?[0-7]{3,4}$/.test(text) && Number.parseInt(text, 8) <= 0o7777) {
          this.#assignments.push({ kind: 'mode', at, mode: Number.parseInt(text, 8) });
        } else if (text !== undefined) {
          r.error(value, `mode: expected an octal mode such as "0660", got "${text}"`, 'quote it: mode: "0660"');
        }
      } else if (key === 'tags') {
        for (const item of r.strings(value, 'tags') ?? []) {
          const template = this.#template(item.node, item.value, 'tags');
          if (template) this.#assignments.push({ kind: 'tag', at: r.at(item.node), op: 'add', value: template, escape: 'substitutions' });
        }
      } else if (key === 'authorize') {
        const authorize = r.boolean(value, 'authorize');
        if (authorize !== undefined) this.#assignments.push({ kind: 'authorize', at, authorize });
      } else if (key === 'attrs') {
        for (const pair of r.namedPairs(value, 'set.attrs')) {
          const name = this.#template(pair.keyNode, pair.key, 'set.attrs');
          const attrValue = this.#templateOf(pair.value, `set.attrs.${pair.key}`);
          if (name && attrValue) this.#assignments.push({ kind: 'attr', at: r.at(pair.keyNode), name, value: attrValue, escape: 'substitutions' });
        }
      }
    }
  }

  #env(node: YamlNode, op: 'set' | 'append', what: string): void {
    const r = this.#reader;
    for (const pair of r.namedPairs(node, what)) {
      if (!ENV_NAME.test(pair.key)) {
        r.error(pair.keyNode, `${what}: "${pair.key}" is not a valid property name (letters, digits and _)`);
        continue;
      }
      const value = this.#templateOf(pair.value, `${what}.${pair.key}`);
      if (value) this.#assignments.push({ kind: 'env', at: r.at(pair.keyNode), op, name: pair.key, value, emptyValue: 'unsets' });
    }
  }

  #symlinkTemplate(node: TreeNode, text: string): Template | undefined {
    const r = this.#reader;
    if (text.startsWith('/')) {
      r.error(node, `symlink "${text}" must be relative to the device directory`, `write "${text.replace(/^\/(dev\/)?/, '')}"`);
      return undefined;
    }
    if (text.split('/').some((segment) => segment === '..' || segment === '.')) {
      r.error(node, `symlink "${text}" must not contain "." or ".." segments`);
      return undefined;
    }
    return this.#template(node, text, 'symlink');
  }

  #account(node: YamlNode, kind: 'owner' | 'group'): Account | undefined {
    const r = this.#reader;
    // A list names alternatives: the first that exists on this system (boards differ in groups).
    const names = r.strings(node, kind);
    if (names === undefined) return undefined;
    for (const { value } of names) {
      const account = kind === 'owner' ? this.#accounts.user(value) : this.#accounts.group(value);
      if (account) return account;
    }
    const list = names.map((n) => `"${n.value}"`).join(', ');
    r.error(node, `unknown ${kind === 'owner' ? 'user' : 'group'} ${list} (not in /etc/${kind === 'owner' ? 'passwd' : 'group'})`);
    return undefined;
  }

  #append(node: YamlNode): void {
    for (const { value } of this.#reader.knownPairs(node, 'append', APPEND_KEYS)) this.#env(value, 'append', 'append.env');
  }

  #remove(node: YamlNode): void {
    const r = this.#reader;
    for (const { key, value } of r.knownPairs(node, 'remove', REMOVE_KEYS)) {
      for (const item of r.strings(value, `remove.${key}`) ?? []) {
        const at = r.at(item.node);
        if (key === 'env' && !ENV_NAME.test(item.value)) {
          r.error(item.node, `remove.env: "${item.value}" is not a valid property name`);
          continue;
        }
        const template = key === 'symlink' ? this.#symlinkTemplate(item.node, item.value) : this.#template(item.node, item.value, `remove.${key}`);
        if (!template) continue;
        if (key === 'env') this.#assignments.push({ kind: 'env', at, op: 'remove', name: item.value, value: template, emptyValue: 'unsets' });
        else if (key === 'symlink') this.#assignments.push({ kind: 'symlink', at, op: 'remove', value: template, escape: 'substitutions' });
        else this.#assignments.push({ kind: 'tag', at, op: 'remove', value: template, escape: 'substitutions' });
      }
    }
  }

  #run(node: YamlNode): void {
    const r = this.#reader;
    for (const item of r.list(node, 'run') ?? []) {
      let argvNode: YamlNode = item;
      let timeoutMs: number | undefined;
      let importOutput = false;
      if (isMap(item)) {
        argvNode = undefined;
        for (const { key, value } of r.knownPairs(item, 'a run entry', RUN_KEYS)) {
          if (key === 'argv') argvNode = value;
          else if (key === 'timeout') timeoutMs = this.#timeout(value);
          else importOutput = r.boolean(value, 'import') ?? false;
        }
        if (argvNode === undefined) {
          r.error(item, 'a run entry needs "argv": a list such as ["/usr/bin/logger", "$kernel"]');
          continue;
        }
      }
      if (!isSeq(argvNode)) {
        r.error(argvNode ?? item, 'run: expected an argv list such as ["/usr/bin/logger", "$kernel"] (programs never run through a shell)');
        continue;
      }
      const words = r.strings(argvNode, 'run argv') ?? [];
      const argv = words.map((w) => this.#template(w.node, w.value, 'run argv'));
      if (words.length === 0 || argv.some((t) => t === undefined)) continue;
      const program = words[0]?.value ?? '';
      if (!program.startsWith('/') && !program.startsWith('$')) {
        r.error(words[0]?.node, `run: the program "${program}" must be an absolute path`, `write "/usr/bin/${program}"`);
        continue;
      }
      const command = { argv: argv as Template[] };
      // An import runs where it is written: later assignments and rules see its output.
      if (importOutput) this.#assignments.push({ kind: 'import', at: r.at(item), import: { source: 'program', command, output: 'properties-and-result', timeoutMs } });
      else this.#assignments.push({ kind: 'run', at: r.at(item), command, timeoutMs });
    }
  }

  #job(node: YamlNode): void {
    const r = this.#reader;
    let argvNode: YamlNode;
    let restart: RestartPolicy = 'on-failure';
    let stopSignal = 'SIGTERM';
    for (const { key, value } of r.knownPairs(node, 'job', JOB_KEYS)) {
      if (key === 'argv') argvNode = value;
      else if (key === 'restart') {
        const text = r.string(value, 'restart');
        if (text !== undefined && (RESTART_POLICIES as readonly string[]).includes(text)) restart = text as RestartPolicy;
        else if (text !== undefined) r.error(value, `restart: expected ${RESTART_POLICIES.join(', ')}, got "${text}"`);
      } else {
        const text = r.string(value, 'stop_signal');
        if (text !== undefined && STOP_SIGNALS.includes(text)) stopSignal = text;
        else if (text !== undefined) r.error(value, `stop_signal: expected one of ${STOP_SIGNALS.join(', ')}, got "${text}"`);
      }
    }
    if (!isMap(node)) return;
    if (!isSeq(argvNode)) {
      r.error(argvNode ?? node, 'job: "argv" must be a list such as ["/usr/sbin/gpsd", "-N", "$devnode"]');
      return;
    }
    const words = r.strings(argvNode, 'job argv') ?? [];
    const argv = words.map((w) => this.#template(w.node, w.value, 'job argv'));
    if (words.length === 0 || argv.some((t) => t === undefined)) return;
    if (!words[0]?.value.startsWith('/')) {
      r.error(words[0]?.node, `job: the program "${words[0]?.value ?? ''}" must be an absolute path`);
      return;
    }
    this.#assignments.push({ kind: 'job', at: r.at(node), argv: argv as Template[], restart, stopSignal });
  }

  #loadModule(node: YamlNode): void {
    for (const item of this.#reader.strings(node, 'load_module') ?? []) {
      const alias = this.#template(item.node, item.value, 'load_module');
      if (alias) this.#assignments.push({ kind: 'module', at: this.#reader.at(item.node), alias });
    }
  }

  #timeout(node: YamlNode): number | undefined {
    return this.#duration(node, 'timeout');
  }

  #duration(node: YamlNode, what: string): number | undefined {
    const text = this.#reader.string(node, what);
    const ms = text === undefined ? undefined : parseDurationMs(text, MAX_TIMEOUT_MS);
    if (ms !== undefined) return ms;
    if (text !== undefined) this.#reader.error(node, `${what}: expected a duration such as "30s", "500ms" or "2m" (at most 24 h), got "${text}"`);
    return undefined;
  }
}
