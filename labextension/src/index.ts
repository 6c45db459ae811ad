/**
 * gilhub's JupyterLab extension: one extension for all of gilhub's in-lab features.
 *
 * Bibliography (issue 5):
 * - rendered markdown links each citation to its entry in the hub's bibliography page,
 *   with the formatted reference as tooltip; unknown keys are marked;
 * - "Insert Citation" inserts [@key] with completion from the bibliography;
 * - "Insert/Refresh References" writes a References section listing the cited entries.
 *
 * Shared repository (issue 4): ./repository.ts. Notebook templates (issue 11): ./templates.ts.
 * Runs (issue 12): ./runs.ts.
 * Activity record and Notebook Story (issue 13): ./activity.ts, ./story.ts.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { MarkdownCell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { bibPageUrl, getEntry, getKnownKeys, IBibEntry, refresh, searchEntries } from './bibclient';
import { activityPlugin } from './activity';
import { citedKeys } from './citations';
import { citingMarkdownFactory } from './render';
import { repositoryPlugin } from './repository';
import { runsPlugin } from './runs';
import { templatesPlugin } from './templates';

export const COMMAND_INSERT_CITATION = 'gilhub:insert-citation';
export const COMMAND_REFERENCES = 'gilhub:insert-references';
const CATEGORY = 'gilhub';

/** The dialog body: a search box and the matching entries, several may be ticked. */
class CitationPicker extends Widget {
  private readonly input: HTMLInputElement;
  private readonly list: HTMLUListElement;
  private readonly chosen = new Set<string>();
  private searchTimer = 0;

  constructor() {
    super();
    this.addClass('gilhub-citation-picker');
    this.input = document.createElement('input');
    this.input.type = 'search';
    this.input.placeholder = 'author, title, year or key';
    this.input.setAttribute('aria-label', 'Search the bibliography');
    this.list = document.createElement('ul');
    this.list.setAttribute('role', 'listbox');
    this.node.append(this.input, this.list);
    this.input.addEventListener('input', () => this.scheduleSearch());
    void this.search('');
  }

  getValue(): string[] {
    return Array.from(this.chosen);
  }

  protected onAfterAttach(): void {
    this.input.focus();
  }

  private scheduleSearch(): void {
    window.clearTimeout(this.searchTimer);
    this.searchTimer = window.setTimeout(() => void this.search(this.input.value), 150);
  }

  private async search(text: string): Promise<void> {
    let entries: IBibEntry[];
    try {
      entries = await searchEntries(text);
    } catch (error) {
      this.list.replaceChildren(Object.assign(document.createElement('li'), {
        textContent: `The bibliography could not be reached (${error}).`
      }));
      return;
    }
    this.list.replaceChildren(...entries.map(entry => this.option(entry)));
  }

  private option(entry: IBibEntry): HTMLLIElement {
    const item = document.createElement('li');
    item.setAttribute('role', 'option');
    item.dataset.key = entry.key;
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = this.chosen.has(entry.key);
    const key = document.createElement('code');
    key.textContent = entry.key;
    const text = document.createElement('span');
    text.textContent = entry.text;
    item.append(box, key, ' ', text);
    item.setAttribute('aria-selected', String(box.checked));
    item.addEventListener('click', event => {
      if (event.target !== box) {
        box.checked = !box.checked;
      }
      if (box.checked) {
        this.chosen.add(entry.key);
      } else {
        this.chosen.delete(entry.key);
      }
      item.setAttribute('aria-selected', String(box.checked));
    });
    return item;
  }
}

function citationText(keys: string[]): string {
  return '[' + keys.map(key => '@' + key).join('; ') + ']';
}

async function insertCitation(tracker: INotebookTracker): Promise<void> {
  const cell = tracker.activeCell;
  if (!(cell instanceof MarkdownCell)) {
    await showErrorMessage('Insert Citation', 'Select a markdown cell first.');
    return;
  }
  const result = await showDialog({
    title: 'Insert Citation',
    body: new CitationPicker(),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Insert' })],
    focusNodeSelector: 'input'
  });
  const keys = result.value ?? [];
  if (!result.button.accept || !keys.length) {
    return;
  }
  cell.rendered = false;
  cell.editor?.replaceSelection?.(citationText(keys));
  cell.editor?.focus();
}

function escapeHtml(text: string): string {
  const span = document.createElement('span');
  span.textContent = text;
  return span.innerHTML;
}

function isReferencesCell(metadata: { [key: string]: any }): boolean {
  return Boolean(metadata?.gilhub?.references);
}

/** The same section as the hub's nbconvert preprocessor writes (see preprocessor.py). */
export function referencesMarkdown(keys: string[], entries: Array<IBibEntry | null>): string {
  const items = keys.map((key, index) => {
    const entry = entries[index];
    if (!entry) {
      return `<li class='gilhub-reference gilhub-cite-missing'>${escapeHtml(key)} — not in the bibliography</li>`;
    }
    const href = escapeHtml(bibPageUrl(key));
    return `<li class='gilhub-reference' data-cite='${escapeHtml(key)}'>${entry.html} <a href='${href}'>[${escapeHtml(key)}]</a></li>`;
  });
  return `## References\n\n<ol class='gilhub-references'>\n${items.join('\n')}\n</ol>\n`;
}

async function insertReferences(panel: NotebookPanel): Promise<void> {
  const model = panel.content.model;
  if (!model) {
    return;
  }
  refresh();
  const known = await getKnownKeys();
  const cells = model.sharedModel.cells;
  const sources = cells
    .filter(cell => cell.cell_type === 'markdown' && !isReferencesCell(cell.getMetadata()))
    .map(cell => cell.getSource());
  const keys = citedKeys(sources.join('\n\n'), known);
  if (!keys.length) {
    await showErrorMessage('References', 'This notebook cites nothing yet: write [@key] in a markdown cell.');
    return;
  }
  const entries = await Promise.all(keys.map(key => getEntry(key).catch(() => null)));
  const source = referencesMarkdown(keys, entries);
  const existing = cells.findIndex(cell => isReferencesCell(cell.getMetadata()));
  let index = existing;
  if (existing >= 0) {
    cells[existing].setSource(source);
  } else {
    index = cells.length;
    model.sharedModel.insertCell(index, {
      cell_type: 'markdown',
      source,
      metadata: { gilhub: { references: true } }
    });
  }
  const widget = panel.content.widgets[index];
  if (widget instanceof MarkdownCell) {
    widget.rendered = true;
  }
}

const bibliographyPlugin: JupyterFrontEndPlugin<void> = {
  id: 'gilhub-lab:bibliography',
  description: 'Citations linked to the lab bibliography, with tooltips, insertion and References.',
  autoStart: true,
  requires: [IRenderMimeRegistry, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    rendermime.addFactory(citingMarkdownFactory, citingMarkdownFactory.defaultRank);

    const hasNotebook = () => tracker.currentWidget !== null;
    app.commands.addCommand(COMMAND_INSERT_CITATION, {
      label: 'Insert Citation…',
      caption: 'Cite an entry of the lab bibliography as [@key]',
      isEnabled: hasNotebook,
      execute: () => insertCitation(tracker)
    });
    app.commands.addCommand(COMMAND_REFERENCES, {
      label: 'Insert/Refresh References',
      caption: 'List the entries this notebook cites in a References section at its end',
      isEnabled: hasNotebook,
      execute: () => (tracker.currentWidget ? insertReferences(tracker.currentWidget) : undefined)
    });
    app.commands.addKeyBinding({
      command: COMMAND_INSERT_CITATION,
      keys: ['Accel Shift U'],
      selector: '.jp-Notebook .jp-MarkdownCell'
    });
    app.contextMenu.addItem({ command: COMMAND_INSERT_CITATION, selector: '.jp-MarkdownCell', rank: 20 });
    app.contextMenu.addItem({ command: COMMAND_REFERENCES, selector: '.jp-Notebook', rank: 21 });
    if (palette) {
      palette.addItem({ command: COMMAND_INSERT_CITATION, category: CATEGORY });
      palette.addItem({ command: COMMAND_REFERENCES, category: CATEGORY });
    }
  }
};

export default [bibliographyPlugin, repositoryPlugin, templatesPlugin, runsPlugin, activityPlugin];
