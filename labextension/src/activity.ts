/**
 * Activity record (issue 13), the front end: every cell execution, notebook open, save
 * and close is queued and sent in batches to gilhub's server extension
 * (POST {server}gilhub/activity, contract in ACTIVITY_API.md); the questions its answers
 * carry are shown beside their cell, in a small panel that never blocks the notebook.
 * The notebook's story is ./story.ts. Works in JupyterLab and Notebook 7 alike: both
 * run cells through NotebookActions.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { Cell, CodeCell } from '@jupyterlab/cells';
import { URLExt } from '@jupyterlab/coreutils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, KernelError, Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';

import {
  ActivityQueue,
  closedOffer,
  executionStatus,
  fitSource,
  IActivityAnswer,
  INotebookEvent,
  IPrompt,
  NotebookClock,
  outputHash,
  PromptQueue,
  RefusedError
} from './activitylog';
import { ClosedNotebookQuestions } from './activityclosed';
import { registerStory } from './story';

const RECORDING_OFF: IActivityAnswer = { enabled: false, mode: 'off', prompts: [] };

/** POST to the user's server (its own token and XSRF cookie); the answer's JSON. */
async function postToServer<T>(path: string, body: object | null, keepalive = false): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(
    URLExt.join(settings.baseUrl, 'gilhub/activity', path),
    { method: 'POST', body: body === null ? null : JSON.stringify(body), keepalive },
    settings
  );
  if (response.status === 404) {
    // no activity handler in this server (an older gilhub): as if recording were off
    return RECORDING_OFF as T;
  }
  if (!response.ok) {
    const error = new ServerConnection.ResponseError(response);
    throw response.status < 500 && response.status !== 429 ? new RefusedError(error.message) : error;
  }
  return (await response.json()) as T;
}

function now(): string {
  return new Date().toISOString();
}

/** Keyboard and mouse inside the panel belong to it, not to the notebook around it. */
function isolate(node: HTMLElement): void {
  node.dataset.lmSuppressShortcuts = 'true';
  node.addEventListener('mousedown', event => event.stopPropagation());
  node.addEventListener('keydown', event => event.stopPropagation());
}

function button(label: string, onClick: () => void, primary = false): HTMLButtonElement {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = label;
  element.className = primary ? 'jp-mod-styled jp-mod-accept' : 'jp-mod-styled';
  element.addEventListener('click', onClick);
  return element;
}

type PromptReply = { answer: string } | { skipped: true } | { dont_ask_in_notebook: true };

let promptNumber = 0;

/**
 * The question beside its cell: the question as the label of a text field, Submit, Skip
 * and "Don't ask in this notebook". Ctrl+Enter submits, Escape skips.
 */
class PromptPanel {
  readonly node = document.createElement('section');
  private readonly field = document.createElement('textarea');
  private readonly status = document.createElement('p');

  constructor(
    readonly prompt: IPrompt,
    private readonly reply: (reply: PromptReply) => Promise<void>
  ) {
    const id = `gilhub-activity-prompt-${++promptNumber}`;
    this.node.className = 'gilhub-activity-prompt';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'A question about this cell');
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = prompt.question;
    this.field.id = id;
    this.field.rows = 2;
    this.field.maxLength = 4000;
    this.field.placeholder = 'A sentence is plenty';
    this.status.setAttribute('role', 'status');
    this.status.className = 'gilhub-activity-prompt-status';
    const buttons = document.createElement('div');
    buttons.className = 'gilhub-activity-prompt-buttons';
    buttons.append(
      button('Submit', () => void this.send({ answer: this.field.value.trim() }), true),
      button('Skip', () => void this.send({ skipped: true })),
      button('Don\u2019t ask in this notebook', () => void this.send({ dont_ask_in_notebook: true }))
    );
    this.node.append(label, this.field, buttons, this.status);
    isolate(this.node);
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void this.send({ answer: this.field.value.trim() });
      } else if (event.key === 'Escape') {
        event.preventDefault();
        void this.send({ skipped: true });
      }
    });
  }

  show(cell: Cell): void {
    cell.node.append(this.node);
  }

  focus(): void {
    this.field.focus();
  }

  remove(): void {
    this.node.remove();
  }

  private async send(reply: PromptReply): Promise<void> {
    if ('answer' in reply && !reply.answer) {
      this.status.textContent = 'Write a few words, or Skip.';
      this.field.focus();
      return;
    }
    this.status.textContent = 'Sending\u2026';
    try {
      await this.reply(reply);
    } catch (error) {
      this.status.textContent = `Not sent (${error instanceof Error ? error.message : error}); try again.`;
    }
  }
}

/** Records this page's notebooks and asks what the server wants asked. */
export class ActivityRecorder {
  readonly queue: ActivityQueue;
  private readonly prompts = new PromptQueue();
  private readonly shown = new Map<string, PromptPanel>();
  private readonly scheduled = new WeakMap<Cell, number>();
  private readonly clock = new NotebookClock();

  constructor(
    private readonly tracker: INotebookTracker,
    private readonly closed: ClosedNotebookQuestions
  ) {
    this.queue = new ActivityQueue({
      send: (events, keepalive) => postToServer<IActivityAnswer>('', { events }, keepalive),
      onAnswer: answer => this.ask(answer.prompts ?? [])
    });
    NotebookActions.executionScheduled.connect(this.onScheduled, this);
    NotebookActions.executed.connect(this.onExecuted, this);
    tracker.widgetAdded.connect((_, panel) => this.watch(panel));
    tracker.forEach(panel => this.watch(panel));
    window.addEventListener('pagehide', () => this.pageGoingAway());
  }

  /**
   * The page is going away (closed, reloaded, navigated from): its notebooks close with it,
   * in JupyterLab as in Notebook 7, though no panel is disposed.
   */
  private pageGoingAway(): void {
    const closes: INotebookEvent[] = [];
    this.tracker.forEach(panel => closes.push(this.notebookEventOf('close', panel)));
    this.queue.leave(closes);
  }

  /** Ask the server now for questions about `path` (its most changed cells). */
  async askNow(path: string): Promise<number> {
    await this.queue.flush();
    const answer = await postToServer<IActivityAnswer>('ask' + URLExt.objectToQueryString({ path }), null);
    return this.ask(answer.prompts ?? []);
  }

  private notebookEventOf(type: INotebookEvent['type'], panel: NotebookPanel): INotebookEvent {
    return { type, path: panel.context.path, time: now() };
  }

  private notebookEvent(type: INotebookEvent['type'], panel: NotebookPanel): void {
    if (this.queue.enabled) {
      this.queue.add(this.notebookEventOf(type, panel));
    }
  }

  private watch(panel: NotebookPanel): void {
    let path = panel.context.path;
    void panel.context.ready.then(() => {
      this.notebookEvent('open', panel);
      this.showPrompts();
    });
    panel.context.saveState.connect((_, state) => {
      if (state === 'completed') {
        this.notebookEvent('save', panel);
      }
    });
    panel.context.pathChanged.connect((_, newPath) => {
      this.prompts.rename(path, newPath);
      const panelShown = this.shown.get(path);
      if (panelShown) {
        this.shown.delete(path);
        this.shown.set(newPath, panelShown);
      }
      path = newPath;
    });
    panel.disposed.connect(() => {
      this.notebookEvent('close', panel);
      this.clock.forget(path);
      const panelShown = this.shown.get(path);
      if (panelShown) {
        this.shown.delete(path);
        this.prompts.putBack(panelShown.prompt);
      }
      void this.queue.flush();
    });
  }

  private panelOf(notebook: Notebook): NotebookPanel | null {
    return this.tracker.find(panel => panel.content === notebook) ?? null;
  }

  private onScheduled(_: unknown, { cell }: { notebook: Notebook; cell: Cell }): void {
    if (this.queue.enabled && cell.model.type === 'code') {
      this.scheduled.set(cell, Date.now());
    }
  }

  private onExecuted(
    _: unknown,
    args: { notebook: Notebook; cell: Cell; success: boolean; error?: KernelError | null }
  ): void {
    const { notebook, cell, success, error } = args;
    const panel = this.panelOf(notebook);
    // without a kernel JupyterLab "runs" a cell by clearing it: nothing ran
    if (!this.queue.enabled || !panel || !(cell instanceof CodeCell) || cell.model.executionCount === null) {
      return;
    }
    const path = panel.context.path;
    const ended = Date.now();
    const started = this.clock.run(path, this.scheduled.get(cell) ?? ended, ended);
    const model = cell.model;
    const outputs = model.outputs.toJSON();
    const failure = success ? null : { ename: error?.errorName ?? '', evalue: error?.errorValue ?? '' };
    const base = {
      type: 'execution' as const,
      path,
      cell_id: model.id,
      execution_count: model.executionCount,
      started: new Date(started).toISOString(),
      ended: new Date(ended).toISOString(),
      ...executionStatus(outputs, failure)
    };
    // hashing is asynchronous: the execution has long gone on when the event is queued
    void Promise.all([fitSource(model.sharedModel.getSource()), outputHash(outputs)]).then(
      ([source, output_hash]) => this.queue.add({ ...base, ...source, output_hash })
    );
  }

  /** New questions into the queue, and on screen where their notebook is open. */
  private ask(prompts: IPrompt[]): number {
    const added = this.prompts.add(prompts);
    if (added) {
      this.showPrompts();
    }
    return added;
  }

  private cellOf(panel: NotebookPanel, cellId: string): Cell | null {
    return panel.content.widgets.find(cell => cell.model.id === cellId) ?? null;
  }

  private isOpen(path: string): boolean {
    return this.tracker.find(panel => panel.context.path === path) !== undefined;
  }

  /** Each notebook's next question: beside its cell where it is open, in the side panel
   * where the user answers about it closed; closed ones not asked about yet are offered. */
  private showPrompts(): void {
    for (const path of this.prompts.pathsReady()) {
      const panel = this.tracker.find(candidate => candidate.context.path === path);
      const prompt = panel
        ? this.prompts.take(path, cellId => this.cellOf(panel, cellId) !== null)
        : this.closed.wants(path)
          ? this.prompts.take(path)
          : null;
      if (!prompt) {
        continue; // a closed notebook's questions are offered below
      }
      const view: PromptPanel = new PromptPanel(prompt, reply => this.answer(view, reply));
      if (panel) {
        this.shown.set(path, view);
        view.show(this.cellOf(panel, prompt.cell_id)!);
      } else {
        this.closed.showQuestion(prompt, view.node);
        view.focus();
      }
    }
    for (const path of this.prompts.closedToOffer(candidate => this.isOpen(candidate))) {
      this.offer(path);
    }
  }

  /** Offer the questions about a notebook just closed, without getting in the way. */
  private offer(path: string): void {
    Notification.info(closedOffer(path, this.prompts.waitingFor(path)), {
      autoClose: false,
      actions: [
        { label: 'Answer now', caption: 'Answer in a side panel', callback: () => this.answerClosed(path) },
        { label: 'Later', caption: 'Asked again when you open it', callback: () => undefined }
      ]
    });
  }

  private answerClosed(path: string): void {
    this.closed.open(path);
    this.showPrompts();
    if (!this.prompts.has(path)) {
      this.closed.finished(path); // answered meanwhile, beside its cells
    }
  }

  private async answer(view: PromptPanel, reply: PromptReply): Promise<void> {
    const { prompt } = view;
    await postToServer('answers', { answers: [{ prompt_id: prompt.prompt_id, ...reply }] });
    view.remove();
    if (this.shown.get(prompt.path) === view) {
      this.shown.delete(prompt.path);
    }
    this.prompts.done(prompt);
    if ('dont_ask_in_notebook' in reply) {
      this.prompts.silence(prompt.path);
    }
    this.showPrompts();
    if (this.closed.wants(prompt.path) && !this.prompts.has(prompt.path)) {
      this.closed.finished(prompt.path);
    }
  }
}

export const activityPlugin: JupyterFrontEndPlugin<void> = {
  id: 'gilhub-lab:activity',
  description: 'Records cell executions for the notebook\u2019s story, asks the occasional question, shows the story.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null
  ) => {
    const recorder = new ActivityRecorder(tracker, new ClosedNotebookQuestions(app.shell));
    registerStory(app, tracker, recorder, palette, mainMenu);
  }
};
