// One error class for the whole project: a stable `code` to branch on, a message that
// says what was expected and what was found, and the underlying `cause` when there is one.
export class HotplugError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HotplugError';
    this.code = code;
  }
}

/** The message of anything thrown, for logs and history rows. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
