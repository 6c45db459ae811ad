/**
 * Questions about notebooks that are no longer open (issue 13). In "end" mode the server
 * asks when a notebook is closed; waiting for the notebook to be opened again would ask
 * days later, or never. So they are offered at once, in a notification that blocks
 * nothing ("Answer now" or "Later"), and answered in this side panel, each question with
 * the cell's source as it was asked about, without opening the notebook (and starting its
 * kernel) again. Unanswered questions still appear beside their cells when it is opened.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { inspectorIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { getJson } from './hubclient';
import type { IPrompt } from './activitylog';

/** A cell as the notebook's story (GET /hub/api/activity?path=) tells it. */
interface IStoryCell {
  cell_id: string;
  versions: Array<{ cell_version: string; source: string }>;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', className = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  node.className = className;
  return node;
}

/** The side panel of questions about closed notebooks, a section per notebook. */
export class ClosedNotebookQuestions extends Widget {
  private readonly sections = new Map<string, HTMLElement>();
  private readonly stories = new Map<string, Promise<IStoryCell[]>>();
  private readonly intro = element('p', 'Nothing to answer.', 'gilhub-activity-closed-intro');

  constructor(private readonly shell: JupyterFrontEnd.IShell) {
    super();
    this.id = 'gilhub-activity-questions';
    this.addClass('gilhub-story'); // the Notebook Story panel's look
    this.addClass('gilhub-activity-closed');
    this.title.icon = inspectorIcon;
    this.title.caption = 'Questions about notebooks you closed';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Questions about closed notebooks');
    this.node.append(element('h2', 'Questions'), this.intro);
  }

  /** Is the user answering questions about `path` here? */
  wants(path: string): boolean {
    return this.sections.has(path);
  }

  /** Answer the questions about `path` here: the panel opens, in front. */
  open(path: string): void {
    if (!this.sections.has(path)) {
      const section = element('section', '', 'gilhub-activity-closed-notebook');
      section.append(element('h3', path));
      this.sections.set(path, section);
      this.stories.delete(path); // told again: the notebook was worked on since
      this.node.append(section);
    }
    this.intro.textContent = 'What were you trying to do? A sentence per question is plenty.';
    if (!this.isAttached) {
      this.shell.add(this, 'right', { rank: 901 });
    }
    this.shell.activateById(this.id);
  }

  /** Show `question` (a prompt's panel) in its notebook's section, with the cell's source. */
  showQuestion(prompt: IPrompt, question: HTMLElement): void {
    const section = this.sections.get(prompt.path);
    if (!section) {
      return;
    }
    const context = element('div', '', 'gilhub-activity-closed-cell');
    question.prepend(context); // goes with the question when it is answered
    section.append(question);
    void this.cellOf(prompt).then(found => {
      if (found) {
        context.append(element('p', `Cell ${found.number}:`), element('pre', found.source));
      }
    });
  }

  /** Nothing more to ask about `path`: its section says so, and stops taking questions. */
  finished(path: string): void {
    const section = this.sections.get(path);
    if (section) {
      section.append(element('p', `Nothing more to ask about ${path}. Thank you.`, 'gilhub-activity-closed-done'));
      this.sections.delete(path);
    }
  }

  /** The asked-about version of the prompt's cell, from the notebook's story (if it tells). */
  private async cellOf(prompt: IPrompt): Promise<{ number: number; source: string } | null> {
    if (!this.stories.has(prompt.path)) {
      const story = getJson<{ cells: IStoryCell[] }>('activity', { path: prompt.path }).then(
        found => found.cells,
        () => []
      );
      this.stories.set(prompt.path, story);
    }
    const cells = await this.stories.get(prompt.path)!;
    const index = cells.findIndex(cell => cell.cell_id === prompt.cell_id);
    if (index < 0 || !cells[index].versions.length) {
      return null;
    }
    const versions = cells[index].versions;
    const asked = versions.find(version => version.cell_version === prompt.cell_version) ?? versions[versions.length - 1];
    return { number: index + 1, source: asked.source };
  }
}
