// The outcome of one action, flat and ready to be a history row: what was done to what,
// for which rule, whether it worked, and how long it took.

export const ACTION_KINDS = ['program', 'node', 'symlink', 'attr', 'module', 'mac-address', 'altname', 'rename', 'authorize', 'refuse', 'job-start', 'job-exit', 'job-stop', 'unit', 'debounce'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export interface ActionResult {
  kind: ActionKind;
  /** The program's path, the node, the link or the attribute path. */
  target: string;
  /** `name (file:line:column)` of the rule that asked for it, when one did. */
  rule: string | null;
  ok: boolean;
  /** Why it failed: an errno code, "timed out", "exit code 3", ... */
  error: string | null;
  durationMs: number;
  /** Programs only. */
  argv?: string[];
  exitCode?: number | null;
  signal?: string | null;
  timedOut?: boolean;
  stdout?: string;
  stderr?: string;
}

/** Times a synchronous step and turns an exception into a failed result. */
export function attempt(kind: ActionKind, target: string, rule: string | null, step: () => void): ActionResult {
  const started = performance.now();
  try {
    step();
    return { kind, target, rule, ok: true, error: null, durationMs: performance.now() - started };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const message = e.code && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message;
    return { kind, target, rule, ok: false, error: message, durationMs: performance.now() - started };
  }
}
