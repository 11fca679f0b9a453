import type { Accounts } from '../accounts.js';
import type { Diagnostic, Rule } from '../model.js';
export function compileMdevConf(_text: string, _file: string, _accounts: Accounts): { rules: Rule[]; diagnostics: Diagnostic[] } {
  return { rules: [], diagnostics: [] };
}
