/**
 * The shared notebook repository from inside JupyterLab (issue 4):
 * "Push to Repository…" and "Pull from Repository…" in the file browser's
 * context menu and the command palette. They call the hub's REST API
 * (same origin, the hub's login cookie plus its XSRF token).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { hubPrefix } from './bibclient';
import { getJson, HubError, messageOf, postJson } from './hubclient';
import { keptReport, OnExists, overwriteQuestion, pullFailure, pullReport } from './pulloutcome';

export const COMMAND_PUSH = 'gilhub:repo-push';
export const COMMAND_PULL = 'gilhub:repo-pull';
const CATEGORY = 'gilhub';

interface IVersion {
  number: number;
  author: string;
  created: string;
  message: string;
}

interface IAnswer {
  status?: number;
  message?: string;
  since?: IVersion[];
  mergeable?: boolean;
  base?: number | null;
  beside?: string;
  path?: string;
  entry?: { path: string };
  version?: IVersion;
  created?: boolean;
  written?: boolean;
}

async function post(path: string, body: object): Promise<IAnswer> {
  return postJson<IAnswer>('repo/' + path, body);
}

/** A dialog body of labelled inputs; getValue() gives their values by name. */
class FormBody extends Widget {
  private readonly inputs = new Map<string, HTMLInputElement>();

  constructor(fields: Array<{ name: string; label: string; value?: string; type?: string }>) {
    super();
    this.addClass('gilhub-repo-form');
    for (const field of fields) {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.name = field.name;
      input.type = field.type ?? 'text';
      if (input.type === 'checkbox') {
        input.checked = field.value === 'true';
      } else {
        input.value = field.value ?? '';
      }
      label.append(field.label, input);
      this.node.append(label);
      this.inputs.set(field.name, input);
    }
  }

  getValue(): { [name: string]: string } {
    const values: { [name: string]: string } = {};
    this.inputs.forEach((input, name) => {
      values[name] = input.type === 'checkbox' ? String(input.checked) : input.value.trim();
    });
    return values;
  }
}

function conflictBody(error: HubError, extra: string): Widget {
  const body = new Widget();
  const intro = document.createElement('p');
  intro.textContent = error.message;
  const list = document.createElement('ul');
  for (const version of error.answer.since ?? []) {
    const item = document.createElement('li');
    item.textContent = `version ${version.number} by ${version.author} (${version.created.slice(0, 16)})${
      version.message ? ': ' + version.message : ''
    }`;
    list.append(item);
  }
  const hint = document.createElement('p');
  hint.textContent = extra;
  body.node.append(intro, list, hint);
  return body;
}

function selectedPath(factory: IFileBrowserFactory, tracker: INotebookTracker): string | null {
  const browser = factory.tracker.currentWidget;
  const item = browser?.selectedItems().next();
  if (item && !item.done && item.value.type !== 'directory') {
    return item.value.path;
  }
  return tracker.currentWidget?.context.path ?? null;
}

function openContext(docManager: IDocumentManager, path: string): DocumentRegistry.Context | undefined {
  const widget = docManager.findWidget(path);
  return widget ? docManager.contextForWidget(widget) : undefined;
}

export async function saveIfOpen(docManager: IDocumentManager, path: string): Promise<void> {
  const context = openContext(docManager, path);
  if (context && context.model.dirty) {
    await context.save();
  }
}

/** Whether `path` is open in a tab with changes not saved yet. */
function hasUnsavedEdits(docManager: IDocumentManager, path: string): boolean {
  return Boolean(openContext(docManager, path)?.model.dirty);
}

/**
 * A document just read from disk, marked as unchanged. JupyterLab marks a notebook as
 * changed when loading it adds the metadata it lacks (`kernelspec`, `language_info`: a
 * notebook written by nbformat or papermill, as many pushed ones are), so a pulled
 * notebook would ask to be saved on close although nothing of the user's is unsaved.
 */
function markLoaded(context: DocumentRegistry.Context): void {
  context.model.dirty = false;
}

/**
 * Show what the hub wrote into an open file (a pull, a merge) instead of a stale copy,
 * reloaded from disk. Unsaved edits are kept unless `discardEdits` (the user chose to
 * overwrite them), so that a later save cannot write them over what the hub wrote.
 */
async function reloadIfOpen(docManager: IDocumentManager, path: string, discardEdits = false): Promise<void> {
  const context = openContext(docManager, path);
  if (context && (discardEdits || !context.model.dirty)) {
    await context.revert();
    markLoaded(context);
  }
}

/** Open a pulled file (or bring its tab to the front), unchanged as it was pulled. */
async function openPulled(docManager: IDocumentManager, path: string): Promise<void> {
  const wasOpen = openContext(docManager, path) !== undefined;
  const widget = docManager.openOrReveal(path);
  const context = widget ? docManager.contextForWidget(widget) : undefined;
  if (context && !wasOpen) {
    await context.ready;
    markLoaded(context);
  }
}

async function pushFile(
  docManager: IDocumentManager,
  factory: IFileBrowserFactory,
  tracker: INotebookTracker
): Promise<void> {
  const source = selectedPath(factory, tracker);
  if (!source) {
    await showErrorMessage('Push to Repository', 'Select a file or open a notebook first.');
    return;
  }
  const form = await showDialog({
    title: `Push ${source} to the repository`,
    body: new FormBody([
      { name: 'path', label: 'Repository path', value: source },
      { name: 'message', label: 'Message' },
      { name: 'keep_outputs', label: 'Keep outputs', type: 'checkbox', value: 'false' }
    ]),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Push' })]
  });
  if (!form.button.accept || !form.value) {
    return;
  }
  const body = {
    source,
    path: form.value.path || source,
    message: form.value.message,
    keep_outputs: form.value.keep_outputs === 'true'
  };
  try {
    await saveIfOpen(docManager, source);
    const answer = await post('push', body);
    const verb = answer.created ? 'Pushed' : 'Unchanged:';
    await showDialog({
      title: 'Push to Repository',
      body: `${verb} ${answer.entry?.path} version ${answer.version?.number}.`,
      buttons: [Dialog.okButton()]
    });
  } catch (error) {
    if (error instanceof HubError && error.status === 409) {
      await resolvePushConflict(docManager, error, body);
    } else {
      await showErrorMessage('Push to Repository', messageOf(error));
    }
  }
}

async function resolvePushConflict(
  docManager: IDocumentManager,
  error: HubError,
  body: { source: string; path: string; message: string }
): Promise<void> {
  const conflictPage =
    URLExt.join(hubPrefix(), 'repo/conflict') +
    URLExt.objectToQueryString({ source: body.source, path: body.path, base: String(error.answer.base ?? '') });
  const mergeable = Boolean(error.answer.mergeable);
  const choice = await showDialog({
    title: 'The repository has moved on',
    body: conflictBody(
      error,
      mergeable
        ? 'Your changes and theirs merge cleanly: push the merge (your copy becomes it), or look at both first.'
        : 'Nothing was overwritten. Look at both sides, or push under a new path.'
    ),
    buttons: [
      Dialog.cancelButton(),
      Dialog.createButton({ label: 'Show both changes' }),
      ...(mergeable ? [Dialog.okButton({ label: 'Push the merge' })] : [])
    ]
  });
  if (choice.button.label === 'Show both changes') {
    window.open(conflictPage, '_blank', 'noopener');
  } else if (choice.button.accept && mergeable) {
    try {
      const answer = await post('merge', { ...body, base: error.answer.base });
      await reloadIfOpen(docManager, body.source);
      await showDialog({
        title: 'Push to Repository',
        body: `Merged and pushed ${answer.entry?.path} version ${answer.version?.number}; your copy now holds the merge.`,
        buttons: [Dialog.okButton()]
      });
    } catch (mergeError) {
      await showErrorMessage('Push the merge', messageOf(mergeError));
    }
  }
}

interface IEntry {
  path: string;
  kind: string;
  author: string;
  head: number;
  updated: string;
  /** Search results only: where the words were found. */
  snippet?: string;
}

/**
 * The pull dialog's body: search the repository (its full-text search) or browse its
 * folders, pick an entry, then the version and where to save it.
 */
class PullBody extends Widget {
  private readonly search = document.createElement('input');
  private readonly list = document.createElement('ul');
  private readonly status = document.createElement('p');
  private readonly form: FormBody;
  private prefix = '';
  private timer = 0;

  constructor(private readonly folder: string) {
    super();
    this.addClass('gilhub-repo-pull');
    this.search.type = 'search';
    this.search.placeholder = 'words in paths, messages, authors, tags or cells';
    this.search.setAttribute('aria-label', 'Search the repository');
    this.list.setAttribute('role', 'listbox');
    this.list.setAttribute('aria-label', 'Repository entries');
    this.status.className = 'gilhub-repo-status';
    this.status.setAttribute('aria-live', 'polite');
    this.form = new FormBody([
      { name: 'path', label: 'Repository path' },
      { name: 'version', label: 'Version (empty: the newest)' },
      { name: 'dest', label: `Save as (empty: ${folder ? `the same name in ${folder}` : 'the same path'})` }
    ]);
    this.node.append(this.search, this.status, this.list, this.form.node);
    this.search.addEventListener('input', () => {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => void this.refresh(), 200);
    });
    this.search.addEventListener('keydown', event => this.onSearchKey(event));
    this.list.addEventListener('keydown', event => this.onListKey(event));
    void this.refresh();
  }

  /** Enter searches at once (it does not pull an entry not yet chosen); ↓ goes to the results. */
  private onSearchKey(event: KeyboardEvent): void {
    if (event.key === 'Enter') {
      event.preventDefault();
      event.stopPropagation();
      window.clearTimeout(this.timer);
      void this.refresh();
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      this.list.querySelector<HTMLElement>('li')?.focus();
    }
  }

  /** ↑ and ↓ move between the results; ↑ from the first goes back to the search box. */
  private onListKey(event: KeyboardEvent): void {
    const item = (event.target as HTMLElement).closest('li');
    if (!item || (event.key !== 'ArrowDown' && event.key !== 'ArrowUp')) {
      return;
    }
    event.preventDefault();
    const next = event.key === 'ArrowDown' ? item.nextElementSibling : item.previousElementSibling;
    ((next as HTMLElement | null) ?? (event.key === 'ArrowUp' ? this.search : item)).focus();
  }

  onAfterAttach(): void {
    this.search.focus();
  }

  getValue(): { [name: string]: string } {
    return this.form.getValue();
  }

  private async refresh(): Promise<void> {
    const text = this.search.value.trim();
    try {
      if (text) {
        const found = await getJson<{ results: IEntry[] }>('repo/search', { q: text, limit: '30' });
        this.showResults([], found.results, `${found.results.length} match(es) for “${text}”`);
      } else {
        const folder = await getJson<{
          folders: Array<{ name: string; count: number }>;
          entries: IEntry[];
        }>('repo/entries', { prefix: this.prefix });
        this.showResults(folder.folders, folder.entries, `Browsing ${this.prefix || 'the top folder'}`);
      }
    } catch (error) {
      this.status.textContent = `The repository could not be reached (${error}).`;
      this.list.replaceChildren();
    }
  }

  private showResults(folders: Array<{ name: string; count: number }>, entries: IEntry[], what: string): void {
    this.status.textContent = entries.length || folders.length ? what : `${what}: nothing here`;
    const items: HTMLLIElement[] = [];
    if (this.prefix && !this.search.value.trim()) {
      items.push(this.item('↑ up', 'gilhub-repo-folder', () => this.enter(PathExt.dirname(this.prefix.replace(/\/$/, '')))));
    }
    for (const folder of folders) {
      items.push(
        this.item(`📁 ${folder.name}/ (${folder.count})`, 'gilhub-repo-folder', () =>
          this.enter(this.prefix + folder.name)
        )
      );
    }
    for (const entry of entries) {
      const text = `${entry.path} · version ${entry.head} · ${entry.author} · ${entry.updated.slice(0, 10)}`;
      const item = this.item(text, 'gilhub-repo-entry', () => this.choose(entry));
      item.dataset.path = entry.path;
      if (entry.snippet) {
        const snippet = document.createElement('span');
        snippet.className = 'gilhub-repo-snippet';
        snippet.textContent = entry.snippet;
        item.append(snippet);
      }
      items.push(item);
    }
    this.list.replaceChildren(...items);
  }

  private item(text: string, className: string, onChoose: () => void): HTMLLIElement {
    const item = document.createElement('li');
    item.className = className;
    item.textContent = text;
    item.tabIndex = 0;
    item.setAttribute('role', 'option');
    item.addEventListener('click', onChoose);
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        event.stopPropagation();
        onChoose();
      }
    });
    return item;
  }

  private enter(folder: string): void {
    this.prefix = folder && folder !== '.' ? folder.replace(/\/?$/, '/') : '';
    void this.refresh();
  }

  private choose(entry: IEntry): void {
    this.input('path').value = entry.path;
    this.input('dest').placeholder = defaultDestination(this.folder, entry.path);
    this.list.querySelectorAll('li').forEach(item =>
      item.setAttribute('aria-selected', String(item.dataset.path === entry.path))
    );
    this.status.textContent = `Chosen: ${entry.path} (newest version ${entry.head}). Pull it, or choose another.`;
  }

  private input(name: string): HTMLInputElement {
    return this.form.node.querySelector<HTMLInputElement>(`input[name="${name}"]`)!;
  }
}

/** Where a pulled entry goes when the user names no file: its name in the current folder. */
function defaultDestination(folder: string, path: string): string {
  return folder ? PathExt.join(folder, PathExt.basename(path)) : path;
}

interface IPullRequest {
  path: string;
  version: string | null;
  dest: string;
  on_exists: OnExists;
}

/** A pull done: as finally asked for, and the hub's answer. */
type Pulled = IPullRequest & { answer: IAnswer };

/** The pull, and the user's choice when they already have the file; null if they kept it. */
async function pullAsking(request: IPullRequest, docManager: IDocumentManager): Promise<Pulled | null> {
  try {
    return { ...request, answer: await post('pull', request) };
  } catch (error) {
    if (!(error instanceof HubError && error.status === 409)) {
      throw error;
    }
    const choice = await showDialog({
      title: `You already have ${request.dest}`,
      body: overwriteQuestion(hasUnsavedEdits(docManager, request.dest)),
      buttons: [
        Dialog.cancelButton({ label: 'Keep mine' }),
        Dialog.warnButton({ label: 'Overwrite' }),
        Dialog.okButton({ label: `Write beside (${error.answer.beside ?? 'new name'})` })
      ]
    });
    if (!choice.button.accept && choice.button.label !== 'Overwrite') {
      return null;
    }
    const retry: IPullRequest = { ...request, on_exists: choice.button.label === 'Overwrite' ? 'overwrite' : 'beside' };
    return { ...retry, answer: await post('pull', retry) };
  }
}

async function pullFile(docManager: IDocumentManager, factory: IFileBrowserFactory): Promise<void> {
  const title = 'Pull from Repository';
  const browser = factory.tracker.currentWidget;
  const folder = browser?.model.path ?? '';
  const form = await showDialog({
    title: 'Pull from the repository',
    body: new PullBody(folder),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Pull' })],
    focusNodeSelector: 'input[type="search"]'
  });
  if (!form.button.accept) {
    return;
  }
  if (!form.value?.path) {
    await showErrorMessage(title, 'Nothing was pulled: choose an entry (search or browse) first.');
    return;
  }
  const path = form.value.path;
  const dest = form.value.dest || defaultDestination(folder, path);
  let pulled: Pulled | null;
  try {
    pulled = await pullAsking({ path, version: form.value.version || null, dest, on_exists: 'fail' }, docManager);
  } catch (error) {
    const status = error instanceof HubError ? error.status : null;
    await showErrorMessage(title, pullFailure(status, messageOf(error)));
    return;
  }
  if (pulled === null) {
    Notification.info(keptReport(dest), { autoClose: 5000 });
    return;
  }
  const answer = pulled.answer;
  await browser?.model.refresh();
  if (answer.path && answer.written) {
    await reloadIfOpen(docManager, answer.path, pulled.on_exists === 'overwrite');
  }
  await showDialog({ title, body: pullReport(answer, dest, pulled.on_exists), buttons: [Dialog.okButton()] });
  if (answer.path) {
    await openPulled(docManager, answer.path);
  }
}

export const repositoryPlugin: JupyterFrontEndPlugin<void> = {
  id: 'gilhub-lab:repository',
  description: 'Push to and pull from the hub\u2019s shared notebook repository.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    factory: IFileBrowserFactory,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(COMMAND_PUSH, {
      label: 'Push to Repository…',
      caption: 'Push this file to the hub\u2019s shared notebook repository as a new version',
      execute: () => pushFile(docManager, factory, tracker)
    });
    app.commands.addCommand(COMMAND_PULL, {
      label: 'Pull from Repository…',
      caption: 'Copy a version from the hub\u2019s shared notebook repository into your files',
      execute: () => pullFile(docManager, factory)
    });
    app.contextMenu.addItem({
      command: COMMAND_PUSH,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 60
    });
    app.contextMenu.addItem({ command: COMMAND_PULL, selector: '.jp-DirListing-content', rank: 61 });
    if (palette) {
      palette.addItem({ command: COMMAND_PUSH, category: CATEGORY });
      palette.addItem({ command: COMMAND_PULL, category: CATEGORY });
    }
  }
};
