/**
 * Notebook templates from inside JupyterLab (issue 11): "New from Template…" in
 * the launcher, the File → New menu and the command palette. The dialog shows
 * the hub's templates with their parameters (as /hub/templates does), takes the
 * values as JSON, and asks the hub to create the filled notebook in the current
 * folder (never over an existing file), then opens it.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { notebookIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { getJson, messageOf, postJson } from './hubclient';

export const COMMAND_NEW_FROM_TEMPLATE = 'gilhub:new-from-template';

interface IParameter {
  name: string;
  type: string;
  default: string;
  value: unknown;
  help: string;
}

interface ITemplate {
  name: string;
  version: number;
  title: string;
  description: string;
  parameters: IParameter[];
}

interface IChoice {
  template: string;
  params: string;
  destination: string;
}

function cell(tag: 'td' | 'th', text: string): HTMLElement {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

/** The dialog body: which template, its parameters, the values (JSON) and the file name. */
class TemplateForm extends Widget {
  private readonly select = document.createElement('select');
  private readonly about = document.createElement('div');
  private readonly params = document.createElement('textarea');
  private readonly fileName = document.createElement('input');

  constructor(private readonly templates: ITemplate[], folder: string) {
    super();
    this.addClass('gilhub-template-form');
    for (const template of templates) {
      const option = document.createElement('option');
      option.value = template.name;
      option.textContent = template.title ? `${template.title} (${template.name})` : template.name;
      this.select.append(option);
    }
    this.select.name = 'template';
    this.params.name = 'params';
    this.params.rows = 6;
    this.fileName.name = 'destination';
    const label = (text: string, input: HTMLElement) => {
      const element = document.createElement('label');
      element.append(text, input);
      return element;
    };
    this.node.append(
      label('Template', this.select),
      this.about,
      label('Parameters (JSON)', this.params),
      label(`File name (in ${folder || 'the top folder'}; {name} is filled from the parameters)`, this.fileName)
    );
    this.select.addEventListener('change', () => this.describe(this.chosen()));
    this.describe(this.chosen());
  }

  getValue(): IChoice {
    return { template: this.select.value, params: this.params.value, destination: this.fileName.value.trim() };
  }

  private chosen(): ITemplate {
    return this.templates.find(template => template.name === this.select.value) ?? this.templates[0];
  }

  private describe(template: ITemplate): void {
    const description = document.createElement('p');
    description.textContent = `Version ${template.version}. ${template.description}`;
    const table = document.createElement('table');
    for (const parameter of template.parameters) {
      const row = document.createElement('tr');
      row.append(cell('th', parameter.name), cell('td', parameter.type), cell('td', parameter.help));
      table.append(row);
    }
    this.about.replaceChildren(description, ...(template.parameters.length ? [table] : []));
    const defaults = Object.fromEntries(template.parameters.map(p => [p.name, p.value]));
    this.params.value = JSON.stringify(defaults, null, 1);
    this.fileName.value = PathExt.basename(template.name);
  }
}

async function newFromTemplate(docManager: IDocumentManager, factory: IFileBrowserFactory): Promise<void> {
  const title = 'New from Template';
  let templates: ITemplate[];
  try {
    templates = (await getJson<{ templates: ITemplate[] }>('templates')).templates;
  } catch (error) {
    await showErrorMessage(title, `The hub's templates could not be listed: ${messageOf(error)}`);
    return;
  }
  if (!templates.length) {
    await showErrorMessage(title, 'There are no templates yet: push a notebook under templates/ in the repository.');
    return;
  }
  const browser = factory.tracker.currentWidget;
  const folder = browser?.model.path ?? '';
  const form = await showDialog({
    title: 'New from Template…',
    body: new TemplateForm(templates, folder),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Create' })]
  });
  if (!form.button.accept || !form.value) {
    return;
  }
  const choice = form.value;
  let params: unknown;
  try {
    params = JSON.parse(choice.params || '{}');
  } catch (error) {
    await showErrorMessage(title, `The parameters are not valid JSON: ${messageOf(error)}`);
    return;
  }
  const name = choice.destination || PathExt.basename(choice.template);
  try {
    const answer = await postJson<{ path: string }>('templates/instantiate', {
      template: choice.template,
      params,
      destination: folder ? PathExt.join(folder, name) : name,
      on_exists: 'new'
    });
    await browser?.model.refresh();
    docManager.openOrReveal(answer.path);
  } catch (error) {
    await showErrorMessage(title, messageOf(error));
  }
}

export const templatesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'gilhub-lab:templates',
  description: 'Create notebooks from the hub\u2019s notebook templates.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory],
  optional: [ILauncher, IMainMenu, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    factory: IFileBrowserFactory,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(COMMAND_NEW_FROM_TEMPLATE, {
      label: args => (args.isLauncher ? 'From Template…' : 'New from Template…'),
      caption: 'Create a notebook from one of the hub\u2019s templates, with your parameters',
      icon: notebookIcon,
      execute: () => newFromTemplate(docManager, factory)
    });
    launcher?.add({ command: COMMAND_NEW_FROM_TEMPLATE, category: 'Notebook', rank: 100 });
    mainMenu?.fileMenu.newMenu.addItem({ command: COMMAND_NEW_FROM_TEMPLATE, rank: 30 });
    palette?.addItem({ command: COMMAND_NEW_FROM_TEMPLATE, category: 'gilhub' });
  }
};
