/**
 * "Notebook Story" (issue 13): a side panel with the current notebook's story as the hub
 * tells it (GET /hub/api/activity?path=): working sessions, each cell's versions with the
 * diff from the one before, its runs, errors and the version that fixed them, and the
 * answers given. From there: export as Markdown, open the story on the hub, delete this
 * notebook's record, and "Ask me about this notebook now".
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { CommandToolbarButton, historyIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import type { ActivityRecorder } from './activity';
import type { IExecutionEvent } from './activitylog';
import { hubPrefix } from './bibclient';
import { deleteJson, getJson, hubApiUrl, messageOf } from './hubclient';

export const COMMAND_STORY = 'gilhub:notebook-story';
export const COMMAND_ASK_NOW = 'gilhub:activity-ask-now';
const CATEGORY = 'gilhub';

/** A run as the narrative lists it: the recorded event's timing and outcome, by version. */
type IExecution = Pick<IExecutionEvent, 'execution_count' | 'started' | 'ended' | 'status' | 'ename' | 'evalue'> & {
  cell_version: string;
};

interface ICellStory {
  cell_id: string;
  versions: Array<{ cell_version: string; source: string; first_run: string; diff: string }>;
  executions: IExecution[];
  fixes: Array<{ error: { ename: string; evalue: string; cell_version: string }; fixed_by: string }>;
  answers: Array<{ cell_version: string; answer: string; time: string }>;
}

interface IStory {
  path: string;
  sessions: Array<{ start: string; end: string; executions: number }>;
  cells: ICellStory[];
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  className = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) {
    node.className = className;
  }
  return node;
}

function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A unified diff with its added and removed lines marked for the eye (and by +/-). */
function diffView(diff: string): HTMLPreElement {
  const pre = element('pre', '', 'gilhub-story-diff');
  for (const line of diff.replace(/\n$/, '').split('\n')) {
    const header = /^(@@|\+\+\+ |--- )/.test(line);
    const kind = header ? 'hunk' : line.startsWith('+') ? 'added' : line.startsWith('-') ? 'removed' : '';
    pre.append(element('span', line + '\n', kind ? `gilhub-story-${kind}` : ''));
  }
  return pre;
}

function cellView(cell: ICellStory, number: number): HTMLElement {
  const section = element('section', '', 'gilhub-story-cell');
  const versionNumber = new Map(cell.versions.map((version, index) => [version.cell_version, index + 1]));
  const versionName = (id: string) => `version ${versionNumber.get(id) ?? '?'}`;
  const errors = cell.executions.filter(run => run.status === 'error').length;
  section.append(
    element('h3', `Cell ${number}`),
    element(
      'p',
      `${cell.versions.length} version(s), ${cell.executions.length} run(s), ${errors} error(s)`,
      'gilhub-story-counts'
    )
  );
  for (const answer of cell.answers) {
    const quote = element('blockquote', answer.answer, 'gilhub-story-answer');
    quote.title = `${versionName(answer.cell_version)}, ${when(answer.time)}`;
    section.append(quote);
  }
  cell.versions.forEach((version, index) => {
    const details = element('details');
    details.append(element('summary', `Version ${index + 1}, first run ${when(version.first_run)}`));
    details.append(version.diff ? diffView(version.diff) : element('pre', version.source, 'gilhub-story-source'));
    section.append(details);
  });
  if (cell.fixes.length) {
    const list = element('ul', '', 'gilhub-story-fixes');
    for (const fix of cell.fixes) {
      list.append(
        element(
          'li',
          `${fix.error.ename}: ${fix.error.evalue} (${versionName(fix.error.cell_version)}), fixed by ${versionName(fix.fixed_by)}`
        )
      );
    }
    section.append(element('h4', 'Errors and their fixes'), list);
  }
  return section;
}

/** The side panel; it follows the notebook in front. */
class StoryPanel extends Widget {
  private readonly heading = element('p', '', 'gilhub-story-path');
  private readonly actions = element('div', '', 'gilhub-story-actions');
  private readonly body = element('div', '', 'gilhub-story-body');
  private path: string | null = null;
  private loading = 0;

  constructor(private readonly recorder: ActivityRecorder) {
    super();
    this.id = 'gilhub-notebook-story';
    this.addClass('gilhub-story');
    this.title.icon = historyIcon;
    this.title.caption = 'Notebook Story';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Notebook Story');
    this.node.append(element('h2', 'Notebook Story'), this.heading, this.actions, this.body);
  }

  showNotebook(path: string | null): void {
    this.path = path;
    void this.load();
  }

  protected onAfterShow(): void {
    void this.load();
  }

  async load(): Promise<void> {
    const path = this.path;
    const attempt = ++this.loading;
    this.heading.textContent = path ?? 'Open a notebook to see its story.';
    this.actions.replaceChildren(...(path ? this.actionButtons(path) : []));
    if (!path || !this.isVisible) {
      this.body.replaceChildren();
      return;
    }
    this.body.replaceChildren(element('p', 'Loading\u2026'));
    let story: IStory;
    try {
      story = await getJson<IStory>('activity', { path });
    } catch (error) {
      if (attempt === this.loading) {
        this.body.replaceChildren(element('p', `The story could not be loaded: ${messageOf(error)}`, 'gilhub-story-error'));
      }
      return;
    }
    if (attempt === this.loading) {
      this.render(story);
    }
  }

  private render(story: IStory): void {
    if (!story.cells.length) {
      this.body.replaceChildren(element('p', 'Nothing recorded for this notebook yet.'));
      return;
    }
    const sessions = element('ol', '', 'gilhub-story-sessions');
    for (const session of story.sessions) {
      sessions.append(element('li', `${when(session.start)} \u2013 ${when(session.end)}: ${session.executions} run(s)`));
    }
    this.body.replaceChildren(
      element('h3', 'Working sessions'),
      sessions,
      ...story.cells.map((cell, index) => cellView(cell, index + 1))
    );
  }

  private actionButtons(path: string): HTMLElement[] {
    const action = (label: string, run: () => Promise<void>) => {
      const node = element('button', label, 'jp-mod-styled');
      node.type = 'button';
      node.addEventListener('click', () => void run());
      return node;
    };
    const query = URLExt.objectToQueryString({ path, format: 'markdown' });
    const exportLink = element('a', 'Export Markdown', 'jp-mod-styled');
    exportLink.href = hubApiUrl('activity/export') + query;
    exportLink.download = path.replace(/^.*\//, '').replace(/\.ipynb$/, '') + '-story.md';
    const hubLink = element('a', 'Open on the hub', 'jp-mod-styled');
    hubLink.href = URLExt.join(hubPrefix(), 'activity', URLExt.encodeParts(path));
    hubLink.target = '_blank';
    hubLink.rel = 'noopener';
    return [
      action('Refresh', () => this.load()),
      action('Ask me now', () => askNow(this.recorder, path)),
      exportLink,
      hubLink,
      action('Delete this record\u2026', () => this.deleteRecord(path))
    ];
  }

  private async deleteRecord(path: string): Promise<void> {
    const result = await showDialog({
      title: 'Delete this notebook\u2019s record?',
      body: `Every recorded run, version and answer of ${path} is deleted for good. The notebook itself stays.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await deleteJson('activity', { path });
    } catch (error) {
      Notification.error(`The record could not be deleted: ${messageOf(error)}`);
      return;
    }
    await this.load();
  }
}

async function askNow(recorder: ActivityRecorder, path: string): Promise<void> {
  try {
    const asked = await recorder.askNow(path);
    if (!asked) {
      Notification.info('Nothing to ask about in this notebook now.', { autoClose: 4000 });
    }
  } catch (error) {
    Notification.error(`Could not ask: ${messageOf(error)}`);
  }
}

function pathOf(panel: NotebookPanel | null): string | null {
  return panel ? panel.context.path : null;
}

/** The panel, its commands (palette, View menu, a button in each notebook's toolbar). */
export function registerStory(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  recorder: ActivityRecorder,
  palette: ICommandPalette | null,
  mainMenu: IMainMenu | null
): void {
  let panel: StoryPanel | null = null;
  const follow = () => panel?.showNotebook(pathOf(tracker.currentWidget));
  tracker.currentChanged.connect(follow);

  app.commands.addCommand(COMMAND_STORY, {
    label: 'Notebook Story',
    caption: 'How this notebook was worked on: runs, versions, errors and fixes, your answers',
    icon: args => (args.toolbar ? historyIcon : undefined),
    execute: () => {
      if (!panel || panel.isDisposed) {
        panel = new StoryPanel(recorder);
        app.shell.add(panel, 'right', { rank: 900 });
      }
      app.shell.activateById(panel.id);
      follow();
    }
  });
  const hasNotebook = () => tracker.currentWidget !== null;
  app.commands.addCommand(COMMAND_ASK_NOW, {
    label: 'Ask Me About This Notebook Now',
    caption: 'Questions about the cells of this notebook that changed most',
    isEnabled: hasNotebook,
    execute: () => {
      const path = pathOf(tracker.currentWidget);
      return path ? askNow(recorder, path) : undefined;
    }
  });
  app.docRegistry.addWidgetExtension('Notebook', {
    createNew: (notebook: NotebookPanel) => {
      const storyButton = new CommandToolbarButton({
        commands: app.commands,
        id: COMMAND_STORY,
        args: { toolbar: true },
        label: ''
      });
      notebook.toolbar.addItem('gilhub-notebook-story', storyButton);
      return storyButton;
    }
  });
  mainMenu?.viewMenu.addGroup([{ command: COMMAND_STORY }], 100);
  palette?.addItem({ command: COMMAND_STORY, category: CATEGORY });
  palette?.addItem({ command: COMMAND_ASK_NOW, category: CATEGORY });
}
