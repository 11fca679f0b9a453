// The native YAML front end: rule files → the compiled model. Every problem in a file
// is collected with file:line:column; a rule with an error is dropped, the rest load. The
// file's own keys are read here; each rule is compiled by yaml-rule.ts.
import type { Accounts } from '../os/accounts.js';
import type { Diagnostic, Rule } from '../rules/model.js';
import { YamlReader, isMapNode, parseYaml, type ParsedYaml, type YamlNode } from './yaml-nodes.js';
import { RuleCompiler } from './yaml-rule.js';

const TOP_KEYS = ['rules', 'beside-udev'] as const;
const BESIDE_UDEV = ['apply', 'step-aside'] as const;

export interface CompileResult {
  rules: Rule[];
  diagnostics: Diagnostic[];
  /** `beside-udev: step-aside`: the file is left out when udev's own rules are loaded (load.ts). */
  stepsAsideForUdev?: boolean;
}

/** Compiles one YAML rule file. Pure apart from the accounts lookup. */
export function compileYamlRules(text: string, file: string, accounts: Accounts): CompileResult {
  return compileParsedYaml(parseYaml(text), file, accounts);
}

/** Compiles a parsed YAML rule file (parsed now, or kept by the rule cache). */
export function compileParsedYaml(parsed: ParsedYaml, file: string, accounts: Accounts): CompileResult {
  const reader = new YamlReader(file, parsed);
  const root = parsed.tree;
  const rules: Rule[] = [];
  if (root === undefined || root === null) return { rules, diagnostics: reader.diagnostics };
  const top = reader.knownPairs(root, 'the file', TOP_KEYS);
  const rulesNode = top.find((p) => p.key === 'rules');
  const stepsAside = besideUdev(reader, top.find((p) => p.key === 'beside-udev')?.value) === 'step-aside' ? { stepsAsideForUdev: true } : {};
  if (rulesNode === undefined) {
    if (top.length === 0 && reader.diagnostics.length === 0) reader.error(root, 'expected a top-level "rules:" list');
    return { rules, diagnostics: reader.diagnostics, ...stepsAside };
  }
  for (const node of reader.list(rulesNode.value, 'rules') ?? []) {
    const before = reader.errorCount;
    const rule = new RuleCompiler(reader, accounts).compile(node);
    if (rule && reader.errorCount === before) rules.push(isMapNode(node) ? { ...rule, text: parsed.text.slice(node.start, node.end).trimEnd() } : rule);
  }
  return { rules, diagnostics: reader.diagnostics, ...stepsAside };
}

/** The file's `beside-udev:` (apply, the default, or step-aside). */
function besideUdev(reader: YamlReader, node: YamlNode | undefined): string | undefined {
  const value = node === undefined ? undefined : reader.string(node, '"beside-udev"');
  if (value !== undefined && !(BESIDE_UDEV as readonly string[]).includes(value)) reader.error(node!, `"beside-udev" is ${JSON.stringify(value)}: expected one of ${BESIDE_UDEV.join(', ')}`);
  return value;
}

