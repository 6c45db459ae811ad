/**
 * Parameterised runs from inside JupyterLab (issue 12):
 * - "Run with Parameters…" (file browser context menu on a notebook, the notebook's
 *   toolbar, the command palette) reads the notebook's `parameters` cell through the hub,
 *   shows one labelled field per parameter with its default, and asks the hub to run it;
 * - the Runs panel (left side bar) lists the user's runs with their status, progress and
 *   messages, live through each active run's event stream, with cancel, the executed
 *   notebook and the run's page on the hub.
 * The values and words are worked out in ./runmodel.ts.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog, showErrorMessage, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon, runIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { hubPrefix } from './bibclient';
import { getJson, hubApiUrl, messageOf, postJson } from './hubclient';
import { saveIfOpen } from './repository';
import {
  describeValue,
  IDeclaredParameter,
  IKernelOptions,
  IKernelSpec,
  initialFieldText,
  IRun,
  isActive,
  IRunKernels,
  kernelOptions,
  parametersFromFields,
  plainTraceback,
  runProgressText,
  scopeOf
} from './runmodel';

export const COMMAND_RUN_WITH_PARAMETERS = 'gilhub:run-with-parameters';
export const COMMAND_SHOW_RUNS = 'gilhub:show-runs';
const TITLE = 'Run with Parameters';
/** Event streams held open at once: a browser allows a handful of connections per site. */
const MAX_LIVE_RUNS = 3;
/** How often runs not followed live are asked for (milliseconds). */
const POLL_INTERVAL = 3000;
const LISTED_RUNS = '30';
/** How often the open panel lists the runs again, for runs started elsewhere (milliseconds). */
const LIST_INTERVAL = 30000;

const runsIcon = new LabIcon({
  name: 'gilhub:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M3 5h11v2H3zm0 6h11v2H3zm0 6h7v2H3z"/><path d="M15 13l7 4.5-7 4.5z"/></g></svg>'
});

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  properties: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function labelled(text: string, input: HTMLElement): HTMLLabelElement {
  return element('label', {}, element('span', { className: 'gilhub-run-label' }, text), input);
}

/** A time of the hub's (ISO, UTC) as the reader's local time of day. */
function localTime(iso: string): string {
  return new Date(iso).toLocaleTimeString();
}

interface IRunChoice {
  parameters: { [name: string]: unknown };
  kernel: string;
}

/** The dialog body: one labelled field per declared parameter, and the kernel. */
class RunForm extends Widget {
  private readonly fields = new Map<string, HTMLInputElement>();
  private readonly kernel = element('select', { name: 'kernel' });

  constructor(path: string, declared: IDeclaredParameter[], hasCell: boolean, kernels: IKernelOptions) {
    super();
    this.addClass('gilhub-run-form');
    const intro = element('p', {}, `Runs ${path} as a job on the hub: it goes on if you close JupyterLab.`);
    if (!hasCell) {
      intro.append(' This notebook has no cell tagged “parameters”: it runs as it is.');
    } else if (declared.length) {
      const names = declared.map(parameter => parameter.name);
      intro.append(` Scope: ${scopeOf(names)}. Values are read as JSON ([1, 2], {"a": 1}, "text"), other text as text; an empty field keeps the notebook's default.`);
    }
    this.node.append(intro);
    declared.forEach((parameter, index) => this.node.append(this.field(parameter, index)));
    for (const choice of kernels.kernels) {
      this.kernel.append(element('option', { value: choice.name, textContent: choice.label, selected: choice.name === kernels.kernel }));
    }
    this.node.append(labelled('Kernel', this.kernel));
    if (kernels.note) {
      const note = element('p', { className: 'gilhub-run-kernel-note', id: 'gilhub-run-kernel-note' }, kernels.note);
      this.kernel.setAttribute('aria-describedby', note.id);
      this.node.append(note);
    }
  }

  /** The parameter's field, labelled with its name, type and help; how its text is read
   * is said beside it (its description, not part of its name). */
  private field(parameter: IDeclaredParameter, index: number): HTMLDivElement {
    const input = element('input', { type: 'text', name: parameter.name, value: initialFieldText(parameter) });
    if (!input.value) {
      input.placeholder = `the notebook's default: ${parameter.default}`;
    }
    const hint = element('span', { className: 'gilhub-run-hint', id: `gilhub-run-hint-${index}` });
    input.setAttribute('aria-describedby', hint.id);
    const describe = () => (hint.textContent = input.value.trim() ? `read as ${describeValue(input.value.trim())}` : "the notebook's default");
    input.addEventListener('input', describe);
    describe();
    const type = parameter.inferred_type_name && parameter.inferred_type_name !== 'None' ? ` (${parameter.inferred_type_name})` : '';
    const help = parameter.help ? ` — ${parameter.help}` : '';
    this.fields.set(parameter.name, input);
    return element('div', { className: 'gilhub-run-field' }, labelled(`${parameter.name}${type}${help}`, input), hint);
  }

  getValue(): IRunChoice {
    const texts: { [name: string]: string } = {};
    this.fields.forEach((input, name) => (texts[name] = input.value));
    return { parameters: parametersFromFields(texts), kernel: this.kernel.value };
  }
}

/**
 * The kernels a run can use (the hub's list: a run's worker is not the user's server and
 * may not have the server's kernels), with the one the notebook names chosen if it can.
 */
async function kernelChoices(app: JupyterFrontEnd, path: string): Promise<IKernelOptions> {
  const runs = await getJson<IRunKernels>('runs/kernels');
  let serverKernels: IKernelSpec[] = [];
  if (runs.any_kernel) {
    const manager = app.serviceManager.kernelspecs;
    await manager.ready;
    serverKernels = Object.values(manager.specs?.kernelspecs ?? {}).flatMap(spec => (spec ? [spec] : []));
  }
  let named: string | null = null;
  try {
    const model = await app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
    named = model.content?.metadata?.kernelspec?.name || null;
  } catch {
    // unreadable here: the hub says why when asked to run it
  }
  return kernelOptions(runs, serverKernels, named);
}

async function runWithParameters(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  panel: RunsPanel,
  path: string | null
): Promise<void> {
  if (!path || !path.endsWith('.ipynb')) {
    await showErrorMessage(TITLE, 'Select a notebook in the file browser, or open one, first.');
    return;
  }
  let body: RunForm;
  try {
    await saveIfOpen(docManager, path);
    const [declared, choices] = await Promise.all([
      getJson<{ has_parameters_cell: boolean; parameters: { [name: string]: IDeclaredParameter } }>(
        'runs/parameters',
        { notebook: path }
      ),
      kernelChoices(app, path)
    ]);
    const parameters = Object.values(declared.parameters);
    body = new RunForm(path, parameters, declared.has_parameters_cell, choices);
  } catch (error) {
    await showErrorMessage(TITLE, `The notebook's parameters could not be read: ${messageOf(error)}`);
    return;
  }
  const form = await showDialog({
    title: `Run ${PathExt.basename(path)} with Parameters`,
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })],
    focusNodeSelector: 'input, select'
  });
  if (!form.button.accept || !form.value) {
    return;
  }
  try {
    const run = await postJson<IRun>('runs', { notebook: path, source: 'storage', ...form.value });
    app.shell.activateById(panel.id);
    panel.follow(run, true);
  } catch (error) {
    await showErrorMessage(TITLE, `The run was not started: ${messageOf(error)}`);
  }
}

/** One run in the panel, updated in place (so that an opened one stays open). */
class RunItem {
  readonly node = element('li', { className: 'gilhub-run' });
  private readonly details = element('details');
  private readonly heading = element('span', { className: 'gilhub-run-heading' });
  private readonly progress = element('progress');
  private readonly state = element('span', { className: 'gilhub-run-state' });
  private readonly actions = element('div', { className: 'gilhub-run-actions' });
  private readonly about = element('p', { className: 'gilhub-run-about' });
  private readonly messages = element('ul', { className: 'gilhub-run-messages' });
  private readonly traceback = element('pre', { className: 'gilhub-run-traceback' });
  private readonly cancel = element('button', { type: 'button', className: 'jp-mod-styled jp-mod-warn', textContent: 'Cancel' });
  private readonly open = element('button', { type: 'button', className: 'jp-mod-styled', textContent: 'Open output' });
  private readonly page = element('a', { target: '_blank', rel: 'noopener', textContent: 'Run page' });
  run: IRun;

  constructor(run: IRun, onCancel: (run: IRun) => void, onOpen: (path: string) => void) {
    this.run = run;
    this.node.dataset.run = String(run.id);
    this.progress.setAttribute('aria-label', `Cells done of run ${run.id}`);
    this.page.href = URLExt.join(hubPrefix(), 'runs', String(run.id));
    this.cancel.addEventListener('click', () => onCancel(this.run));
    this.open.addEventListener('click', () => this.run.output_path && onOpen(this.run.output_path));
    this.actions.append(this.cancel, this.open, this.page);
    this.details.append(
      element('summary', {}, this.heading, this.progress, this.state),
      this.actions,
      this.about,
      this.messages,
      this.traceback
    );
    this.node.append(this.details);
    this.update(run);
  }

  expand(): void {
    this.details.open = true;
  }

  update(run: IRun): void {
    // the list leaves out messages and the queue position: keep the last ones seen
    this.run = { ...this.run, ...run, messages: run.messages ?? this.run.messages };
    const shown = this.run;
    this.node.dataset.status = shown.status;
    this.heading.textContent = `#${shown.id} ${shown.notebook}`;
    this.state.textContent = runProgressText(shown);
    this.progress.max = Math.max(shown.cells_total, 1);
    this.progress.value = shown.cells_done;
    this.cancel.hidden = !isActive(shown);
    this.open.hidden = !shown.output_path;
    this.open.title = shown.output_path ?? '';
    const started = shown.started ? `, started ${localTime(shown.started)}` : '';
    this.about.textContent = `Parameters ${JSON.stringify(shown.parameters)}, kernel ${shown.kernel}${started}.`;
    this.traceback.textContent = plainTraceback(shown.error?.traceback ?? '');
    this.traceback.hidden = !shown.error?.traceback;
    this.messages.replaceChildren(
      ...(shown.messages ?? []).map(message =>
        element(
          'li',
          { className: `gilhub-run-message gilhub-run-${message.level.toLowerCase()}` },
          element('strong', {}, message.level),
          ` ${localTime(message.time)} ${message.text}${message.file ? ` (${message.file})` : ''}`
        )
      )
    );
  }
}

/** The Runs side panel. */
export class RunsPanel extends Widget {
  private readonly list = element('ul', { className: 'gilhub-run-list' });
  private readonly status = element('p', { className: 'gilhub-runs-status' });
  private readonly items = new Map<number, RunItem>();
  private readonly streams = new Map<number, EventSource>();
  private pollTimer = 0;
  private listTimer = 0;

  constructor(private readonly onOpen: (path: string) => void) {
    super();
    this.id = 'gilhub-runs';
    this.addClass('gilhub-runs-panel');
    this.title.icon = runsIcon;
    this.title.caption = 'Runs: your notebooks run as jobs on the hub';
    this.status.setAttribute('aria-live', 'polite');
    const refresh = element('button', { type: 'button', className: 'jp-mod-styled', textContent: 'Refresh' });
    refresh.addEventListener('click', () => void this.refresh());
    const allRuns = element('a', { href: URLExt.join(hubPrefix(), 'runs'), target: '_blank', rel: 'noopener', textContent: 'All runs on the hub' });
    this.list.setAttribute('aria-label', 'Your runs, newest first');
    this.node.append(element('header', {}, element('h2', {}, 'Runs'), refresh, allRuns), this.status, this.list);
  }

  /** Show ``run`` (newly started, or changed), and follow it while it is active. */
  follow(run: IRun, expand = false): void {
    const item = this.itemFor(run);
    if (expand) {
      item.expand();
      this.status.textContent = `Run ${run.id} of ${run.notebook}: ${runProgressText(item.run)}.`;
    }
    if (isActive(item.run) && !this.streams.has(run.id) && this.streams.size < MAX_LIVE_RUNS) {
      this.listen(run.id);
    }
    this.schedulePoll();
  }

  async refresh(): Promise<void> {
    try {
      const { runs } = await getJson<{ runs: IRun[] }>('runs', { limit: LISTED_RUNS });
      runs.forEach(run => this.follow(run));
      if (!runs.length) {
        this.status.textContent = 'No runs yet: right-click a notebook and choose Run with Parameters…';
      }
    } catch (error) {
      this.status.textContent = `Your runs could not be listed: ${messageOf(error)}`;
    }
  }

  /** While it is open, the panel also shows runs started elsewhere (the hub's pages, the CLI). */
  protected onAfterShow(): void {
    void this.refresh();
    window.clearInterval(this.listTimer);
    this.listTimer = window.setInterval(() => void this.refresh(), LIST_INTERVAL);
  }

  protected onAfterHide(): void {
    window.clearInterval(this.listTimer);
  }

  dispose(): void {
    this.streams.forEach(stream => stream.close());
    this.streams.clear();
    window.clearTimeout(this.pollTimer);
    window.clearInterval(this.listTimer);
    super.dispose();
  }

  private itemFor(run: IRun): RunItem {
    let item = this.items.get(run.id);
    if (item) {
      item.update(run);
      return item;
    }
    item = new RunItem(run, chosen => void this.cancelRun(chosen), this.onOpen);
    this.items.set(run.id, item);
    const newer = Array.from(this.items.keys()).filter(id => id > run.id).length;
    this.list.insertBefore(item.node, this.list.children[newer] ?? null);
    return item;
  }

  private listen(id: number): void {
    const stream = new EventSource(hubApiUrl(`runs/${id}/events`));
    this.streams.set(id, stream);
    const stop = () => {
      stream.close();
      this.streams.delete(id);
    };
    stream.onmessage = event => {
      const run = JSON.parse(event.data) as IRun;
      this.itemFor(run);
      if (!isActive(run)) {
        stop(); // it has ended: the hub closes the stream, which would otherwise reconnect
        this.announceEnd(this.items.get(id)!.run);
        this.followWaitingRuns();
      }
    };
    stream.onerror = () => {
      stop(); // asked for again by the poll, which also says what went wrong
      this.schedulePoll();
    };
  }

  /** Say that a run followed live has ended, also when the panel is closed. */
  private announceEnd(run: IRun): void {
    const text = `Run ${run.id} of ${run.notebook}: ${runProgressText(run)}.`;
    this.status.textContent = text;
    const output = run.output_path;
    const actions = output ? [{ label: 'Open output', callback: () => this.onOpen(output) }] : [];
    const kind = run.status === 'completed' ? 'success' : run.status === 'failed' ? 'error' : 'info';
    Notification.emit(text, kind, { autoClose: 10000, actions });
  }

  /** A live slot came free: give it to an active run that was polled. */
  private followWaitingRuns(): void {
    this.items.forEach(item => this.follow(item.run));
  }

  /** Active runs without a live stream are asked for now and then. */
  private schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    const polled = Array.from(this.items.values()).filter(item => isActive(item.run) && !this.streams.has(item.run.id));
    if (!polled.length || this.isDisposed) {
      return;
    }
    this.pollTimer = window.setTimeout(async () => {
      await Promise.all(
        polled.map(item =>
          getJson<IRun>(`runs/${item.run.id}`).then(
            run => this.follow(run),
            error => (this.status.textContent = `Run ${item.run.id} could not be followed: ${messageOf(error)}`)
          )
        )
      );
      this.schedulePoll();
    }, POLL_INTERVAL);
  }

  private async cancelRun(run: IRun): Promise<void> {
    const choice = await showDialog({
      title: `Cancel run ${run.id}?`,
      body: `${run.notebook} stops where it is; what has run so far is saved.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel the run' })]
    });
    if (!choice.button.accept) {
      return;
    }
    try {
      this.follow(await postJson<IRun>(`runs/${run.id}/cancel`, {}));
    } catch (error) {
      await showErrorMessage('Cancel the run', messageOf(error));
    }
  }
}

/** The notebook the command is for: given, chosen in the file browser, or the current one. */
function notebookPath(
  args: { path?: unknown; fromBrowser?: unknown },
  factory: IFileBrowserFactory,
  tracker: INotebookTracker
): string | null {
  if (typeof args.path === 'string') {
    return args.path;
  }
  if (args.fromBrowser) {
    const item = factory.tracker.currentWidget?.selectedItems().next();
    return item && !item.done ? item.value.path : null;
  }
  return tracker.currentWidget?.context.path ?? null;
}

export const runsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'gilhub-lab:runs',
  description: 'Run notebooks with parameters as jobs on the hub, and follow them in the Runs panel.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory, INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    factory: IFileBrowserFactory,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const panel = new RunsPanel(path => docManager.openOrReveal(path));
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);

    app.commands.addCommand(COMMAND_RUN_WITH_PARAMETERS, {
      label: 'Run with Parameters…',
      caption: 'Run this notebook as a job on the hub, with the parameter values you choose',
      icon: runIcon,
      execute: args =>
        runWithParameters(app, docManager, panel, notebookPath(args, factory, tracker))
    });
    app.commands.addCommand(COMMAND_SHOW_RUNS, {
      label: 'Show Runs',
      caption: 'Your notebook runs, live',
      execute: () => app.shell.activateById(panel.id)
    });
    app.contextMenu.addItem({
      command: COMMAND_RUN_WITH_PARAMETERS,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      args: { fromBrowser: true },
      rank: 62
    });
    tracker.widgetAdded.connect((_, notebook) => {
      const button = new ToolbarButton({
        icon: runIcon,
        className: 'gilhub-run-button',
        tooltip: 'Run with Parameters… (as a job on the hub)',
        onClick: () => void app.commands.execute(COMMAND_RUN_WITH_PARAMETERS, { path: notebook.context.path })
      });
      if (!notebook.toolbar.insertAfter('cellType', 'gilhub-run-with-parameters', button)) {
        notebook.toolbar.addItem('gilhub-run-with-parameters', button);
      }
    });
    if (palette) {
      palette.addItem({ command: COMMAND_RUN_WITH_PARAMETERS, category: 'gilhub' });
      palette.addItem({ command: COMMAND_SHOW_RUNS, category: 'gilhub' });
    }
  }
};
