/**
 * What "Pull from Repository…" did, in words (issue 15): every outcome of
 * POST /hub/api/repo/pull said plainly. Pure (no DOM, no JupyterLab), tested by node in
 * test/pulloutcome.test.mjs.
 */

/** The hub's answer to a pull (gilhub.repository.service.PullOutcome). */
export interface IPullAnswer {
  path?: string;
  written?: boolean;
  entry?: { path: string };
  version?: { number: number };
}

/** What to do when the destination is already one of the user's files. */
export type OnExists = 'fail' | 'beside' | 'overwrite';

/**
 * The question when the destination is already the user's file; `unsavedEdits` when it is
 * open with changes not saved yet, which overwriting discards too.
 */
export function overwriteQuestion(unsavedEdits: boolean): string {
  const edits = unsavedEdits ? ' It has unsaved changes in its open tab: overwriting discards them too.' : '';
  return `Nothing was overwritten. Write the pulled version beside your file, or overwrite your file?${edits}`;
}

/** A pull that went through: what was written where, or that nothing needed to be. */
export function pullReport(answer: IPullAnswer, dest: string, onExists: OnExists): string {
  const what = `version ${answer.version?.number} of ${answer.entry?.path}`;
  if (answer.written === false) {
    return `Already up to date: ${answer.path} holds ${what}.`;
  }
  const pulled = `Pulled ${what} into ${answer.path}`;
  if (onExists === 'beside' && answer.path !== dest) {
    return `${pulled}, beside your ${dest}, which is unchanged.`;
  }
  return onExists === 'overwrite' ? `${pulled}, replacing your copy.` : `${pulled}.`;
}

/** The user kept their own file rather than overwrite it or write beside it. */
export function keptReport(dest: string): string {
  return `Nothing was pulled: you kept your ${dest} as it was.`;
}

/**
 * A pull that failed: `status` is the hub's HTTP status, or `null` when the hub could
 * not be reached at all; `message` the hub's own explanation.
 */
export function pullFailure(status: number | null, message: string): string {
  message = message.replace(/[.\s]+$/, '');
  if (status === null) {
    return `Nothing was pulled: the hub could not be reached (${message}).`;
  }
  if (status === 401 || status === 403) {
    return `Nothing was pulled: the hub refused (${message}). Log in to the hub again and retry.`;
  }
  if (status === 404) {
    return `Nothing was pulled: ${message}. Search again: it may have been moved or deleted.`;
  }
  return `Nothing was pulled: ${message}.`;
}
