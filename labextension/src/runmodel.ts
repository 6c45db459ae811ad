/**
 * The pure side of "Run with Parameters…" and the Runs panel (issue 12): the values a
 * parameters form gives, and a run's state in words. No DOM and no JupyterLab here, so
 * that node's tests (test/runmodel.test.mjs) run it as it is.
 */

/** A parameter as the hub reads it from the notebook (papermill's inspect_notebook). */
export interface IDeclaredParameter {
  name: string;
  inferred_type_name: string;
  /** The Python source of the default value, as written in the parameters cell. */
  default: string;
  help: string;
}

export interface IRunMessage {
  id: number;
  time: string;
  level: 'INFO' | 'WARNING' | 'ERROR';
  text: string;
  file: string | null;
}

/** A run as GET /hub/api/runs/ID and its event stream give it. */
export interface IRun {
  id: number;
  notebook: string;
  source: string;
  version: number | null;
  parameters: { [name: string]: unknown };
  kernel: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  cells_done: number;
  cells_total: number;
  current_cell: number | null;
  created: string;
  started: string | null;
  ended: string | null;
  error: { cell: number | null; ename: string | null; evalue: string | null; traceback: string | null } | null;
  output_path: string | null;
  queue_position?: number | null;
  /** Why the run's job waits before it starts (in Slurm's queue, say), while it does. */
  waiting?: string | null;
  messages?: IRunMessage[];
}

/** A kernel as GET /hub/api/runs/kernels and the user's server's kernelspecs list it. */
export interface IKernelSpec {
  name: string;
  display_name: string;
}

/** GET /hub/api/runs/kernels: the kernels runs accept (`any_kernel`: any name, then looked
 * up by the worker in the user's own environment). */
export interface IRunKernels {
  kernels: IKernelSpec[];
  default: string;
  any_kernel: boolean;
}

export interface IKernelChoice {
  name: string;
  label: string;
}

/** What the form's kernel field offers, the kernel chosen first, and a note (or ''). */
export interface IKernelOptions {
  kernels: IKernelChoice[];
  kernel: string;
  note: string;
}

/**
 * The kernels a run can use, for the form: those the runs accept, not those of the user's
 * server (a worker runs elsewhere, where they may not be installed). Where runs accept any
 * name (`any_kernel`), the user's own kernels (`serverKernels`) and the one the notebook
 * names are offered too. The notebook's kernel is chosen first when runs can use it; else
 * the runs' default, said so.
 */
export function kernelOptions(
  runs: IRunKernels,
  serverKernels: IKernelSpec[],
  notebookKernel: string | null
): IKernelOptions {
  const specs = runs.any_kernel ? [...runs.kernels, ...serverKernels] : runs.kernels;
  const kernels: IKernelChoice[] = [];
  for (const spec of specs) {
    if (!kernels.some(choice => choice.name === spec.name)) {
      kernels.push({ name: spec.name, label: `${spec.display_name} (${spec.name})` });
    }
  }
  const offered = (name: string | null) => name !== null && kernels.some(choice => choice.name === name);
  if (notebookKernel && !offered(notebookKernel) && runs.any_kernel) {
    kernels.unshift({ name: notebookKernel, label: `${notebookKernel} (named by the notebook)` });
  }
  if (!kernels.length) {
    return { kernels, kernel: '', note: 'Runs find no kernel installed on the hub: ask its administrator to install one.' };
  }
  if (offered(notebookKernel)) {
    return { kernels, kernel: notebookKernel!, note: '' };
  }
  const kernel = offered(runs.default) ? runs.default : kernels[0].name;
  const note = notebookKernel
    ? `This notebook names the kernel “${notebookKernel}”, which runs on the hub do not have: it runs with the kernel chosen here.`
    : '';
  return { kernels, kernel, note };
}

export function isActive(run: Pick<IRun, 'status'>): boolean {
  return run.status === 'queued' || run.status === 'running';
}

/**
 * A form field's value, as MPPW reads it: JSON when the text is JSON (`3`, `[1, 2]`,
 * `{"key": "value"}`, `"quoted"`, `null`), else the text itself as a string.
 */
export function parseParameterValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const PYTHON_CONSTANTS: { [name: string]: string } = { True: 'true', False: 'false', None: 'null' };
const PYTHON_ESCAPES: { [letter: string]: string } = { n: '\n', t: '\t', r: '\r', '0': '\0' };

/** A Python string literal at `start` (quote included): its value and where it ends. */
function pythonString(source: string, start: number): { value: string; end: number } | null {
  const quote = source[start];
  let value = '';
  for (let index = start + 1; index < source.length; index++) {
    const char = source[index];
    if (char === quote) {
      return { value, end: index + 1 };
    }
    if (char === '\\') {
      const next = source[++index] ?? '';
      value += PYTHON_ESCAPES[next] ?? next;
    } else {
      value += char;
    }
  }
  return null;
}

/** How a field's text will be read, in words ("a number", "text", …), shown beside it. */
export function describeValue(text: string): string {
  const value = parseParameterValue(text);
  if (Array.isArray(value)) {
    return `a list of ${value.length}`;
  }
  if (value === null) {
    return 'None';
  }
  switch (typeof value) {
    case 'string':
      return 'text';
    case 'number':
      return 'a number';
    case 'boolean':
      return value ? 'True' : 'False';
    default:
      return 'a dictionary';
  }
}

/**
 * The JSON text of a parameter's default, when the Python source is a plain literal
 * (numbers, strings, True/False/None, lists and dicts of them); `null` for anything else
 * (an expression, a tuple), which the form then leaves to the notebook.
 */
export function pythonDefaultAsJson(source: string): string | null {
  let json = '';
  const text = source.trim();
  for (let index = 0; index < text.length; ) {
    const char = text[index];
    if (char === "'" || char === '"') {
      const literal = pythonString(text, index);
      if (!literal) {
        return null;
      }
      json += JSON.stringify(literal.value);
      index = literal.end;
      continue;
    }
    const word = /^[A-Za-z_]\w*/.exec(text.slice(index));
    if (word) {
      if (!(word[0] in PYTHON_CONSTANTS)) {
        return null;
      }
      json += PYTHON_CONSTANTS[word[0]];
      index += word[0].length;
      continue;
    }
    if (!/[-+0-9.eE[\]{},:\s]/.test(char)) {
      return null;
    }
    json += char;
    index++;
  }
  try {
    return JSON.stringify(JSON.parse(json.replace(/,(\s*[\]}])/g, '$1')));
  } catch {
    return null;
  }
}

/** What the form shows first for a parameter: its default as JSON, or nothing. */
export function initialFieldText(parameter: IDeclaredParameter): string {
  return pythonDefaultAsJson(parameter.default) ?? '';
}

/**
 * The parameters to run with, from the form's texts by name: an empty field keeps the
 * notebook's own default (it is not sent).
 */
export function parametersFromFields(texts: { [name: string]: string }): { [name: string]: unknown } {
  const parameters: { [name: string]: unknown } = {};
  for (const [name, text] of Object.entries(texts)) {
    if (text.trim() !== '') {
      parameters[name] = parseParameterValue(text.trim());
    }
  }
  return parameters;
}

/** What a run is about, from its parameters' names (MPPW's convention). */
export function scopeOf(names: string[]): 'operation' | 'artifact' | 'project' {
  if (names.includes('OPERATION_ID')) {
    return 'operation';
  }
  return names.includes('ARTIFACT_ID') ? 'artifact' : 'project';
}

/** The run's progress in words: queued where, cells done, the cell running, how it ended. */
export function runProgressText(run: IRun): string {
  const cells = `${run.cells_done} of ${run.cells_total} cells`;
  if (run.waiting && isActive(run) && !run.cells_done) {
    return run.waiting;
  }
  switch (run.status) {
    case 'queued':
      return run.queue_position ? `Queued: position ${run.queue_position} in the queue` : 'Queued';
    case 'running':
      if (!run.cells_total) {
        return 'Starting';
      }
      return run.current_cell === null ? `Running: ${cells} done` : `Running cell ${run.current_cell + 1}: ${cells} done`;
    case 'completed':
      return `Completed: ${cells}`;
    case 'cancelled':
      return `Cancelled after ${cells}`;
    case 'failed': {
      const where = run.error?.cell === null || run.error?.cell === undefined ? '' : ` in cell ${run.error.cell + 1}`;
      const what = [run.error?.ename, run.error?.evalue].filter(Boolean).join(': ');
      return `Failed${where}${what ? ': ' + what : ''}`;
    }
  }
}

/** A traceback as plain text: the terminal colours IPython writes into it removed. */
export function plainTraceback(traceback: string): string {
  // eslint-disable-next-line no-control-regex
  return traceback.replace(/\u001b\[[0-9;]*m/g, '');
}
