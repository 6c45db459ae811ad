/**
 * Rendered markdown: each citation becomes a link to its entry in the hub's
 * bibliography page, labelled "Author Year", with the formatted reference as
 * a tooltip; a key the bibliography does not have is marked.
 */
import { RenderedMarkdown } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { bibPageUrl, getEntry, getKnownKeys, IBibEntry } from './bibclient';
import {
  CitationStyle,
  citeTagKeys,
  endsWithMystRole,
  findCitations,
  ICitation,
  ICitedKey,
  mystCitation,
  mystRoleStyle
} from './citations';

/** Where citations are never looked for. */
const SKIPPED = 'a, code, pre, script, style, svg, math, mjx-container, .MathJax, .gilhub-citation';

function yearOf(entry: IBibEntry): string {
  const match = /\d{4}/.exec(entry.fields.year ?? entry.fields.date ?? '');
  return match ? match[0] : 'n.d.';
}

function labelFor(entry: IBibEntry, style: CitationStyle, item: ICitedKey): string {
  const author = entry.label.replace(/\s+\S+$/, '');
  if (style === 'author') {
    return author;
  }
  if (style === 'year' || item.suppressAuthor) {
    return yearOf(entry);
  }
  if (style === 'textual') {
    return `${author} (${yearOf(entry)})`;
  }
  return entry.label;
}

let tooltip: HTMLElement | null = null;

function showTooltip(anchor: HTMLElement, html: string): void {
  if (!tooltip) {
    tooltip = document.createElement('div');
    tooltip.className = 'gilhub-cite-tooltip';
    tooltip.setAttribute('role', 'tooltip');
    document.body.appendChild(tooltip);
  }
  // The hub formats and escapes every field; only its own markup is in `html`.
  tooltip.innerHTML = html;
  const box = anchor.getBoundingClientRect();
  tooltip.style.left = `${Math.max(4, box.left + window.scrollX)}px`;
  tooltip.style.top = `${box.bottom + window.scrollY + 6}px`;
  tooltip.hidden = false;
}

function hideTooltip(): void {
  if (tooltip) {
    tooltip.hidden = true;
  }
}

function citationLink(item: ICitedKey, style: CitationStyle, fallback: string): HTMLElement {
  const link = document.createElement('a');
  link.className = 'gilhub-cite';
  link.dataset.cite = item.key;
  link.href = new URL(bibPageUrl(item.key), window.location.href).toString();
  link.target = '_blank';
  link.rel = 'noopener';
  link.textContent = fallback;
  void getEntry(item.key).then(
    entry => {
      if (!entry) {
        link.classList.add('gilhub-cite-missing');
        link.removeAttribute('href');
        link.title = `Not in the bibliography: ${item.key}`;
        link.textContent = `?${item.key}`;
        return;
      }
      link.textContent = labelFor(entry, style, item);
      link.setAttribute('aria-label', entry.text);
      link.addEventListener('mouseenter', () => showTooltip(link, entry.html));
      link.addEventListener('focus', () => showTooltip(link, entry.html));
      link.addEventListener('mouseleave', hideTooltip);
      link.addEventListener('blur', hideTooltip);
    },
    () => {
      link.title = 'The bibliography could not be reached';
    }
  );
  return link;
}

/** The DOM of one citation: "(see Author 1905, p. 5; Other 1999)". */
export function renderCitation(citation: ICitation, original: string): HTMLElement {
  const span = document.createElement('span');
  span.className = 'gilhub-citation';
  span.dataset.source = original;
  const parenthetical = citation.style === 'parenthetical';
  if (parenthetical) {
    span.append('(');
  }
  citation.keys.forEach((item, index) => {
    if (index > 0) {
      span.append(citation.style === 'html' ? ', ' : '; ');
    }
    if (item.prefix) {
      span.append(item.prefix + ' ');
    }
    span.append(citationLink(item, citation.style, item.key));
    if (item.locator) {
      span.append(', ' + item.locator);
    }
  });
  if (parenthetical) {
    span.append(')');
  }
  return span;
}

function proseTextNodes(root: HTMLElement): Text[] {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: node =>
      node.parentElement?.closest(SKIPPED) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT
  });
  const nodes: Text[] = [];
  while (walker.nextNode()) {
    nodes.push(walker.currentNode as Text);
  }
  return nodes;
}

function linkTextNode(node: Text, known: Set<string>): void {
  const text = node.data;
  const citations = findCitations(text, known);
  if (!citations.length) {
    return;
  }
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (const citation of citations) {
    fragment.append(text.slice(position, citation.start));
    fragment.append(renderCitation(citation, text.slice(citation.start, citation.end)));
    position = citation.end;
  }
  fragment.append(text.slice(position));
  node.replaceWith(fragment);
}

/** MyST roles: markdown renders {cite}`key` as the text "{cite}" and a <code>. */
function linkMystRoles(root: HTMLElement): void {
  for (const code of Array.from(root.querySelectorAll('code'))) {
    const before = code.previousSibling;
    if (code.closest('pre') || !(before instanceof Text) || !endsWithMystRole(before.data)) {
      continue;
    }
    const role = /\{cite(?::[a-z]+)?\}$/.exec(before.data)!;
    const keys = mystCitation(role[0], code.textContent ?? '');
    if (!keys || !keys.length) {
      continue;
    }
    before.data = before.data.slice(0, role.index);
    const citation: ICitation = { start: 0, end: 0, keys, style: mystRoleStyle(role[0]) };
    code.replaceWith(renderCitation(citation, role[0] + '`' + code.textContent + '`'));
  }
}

/** <cite data-cite="key">text</cite>: keys from the element, else from the source by position. */
function linkCiteElements(root: HTMLElement, sourceKeys: string[][]): void {
  const elements = Array.from(root.querySelectorAll('cite')).filter(cite => !cite.closest('pre, code'));
  elements.forEach((cite, index) => {
    const attribute = cite.getAttribute('data-cite');
    const key = (attribute !== null ? attribute.split(/[,;\s]+/) : sourceKeys[index] ?? [])
      .map(part => part.trim())
      .find(part => part.length > 0);
    if (key && !cite.querySelector('.gilhub-cite')) {
      const link = citationLink({ key, prefix: '', locator: '', suppressAuthor: false }, 'html', cite.textContent || key);
      const text = cite.textContent;
      cite.replaceChildren(link);
      if (text) {
        void getEntry(key).then(entry => entry && (link.textContent = text));
      }
    }
  });
}

export async function linkCitations(root: HTMLElement, source = ''): Promise<void> {
  const known = await getKnownKeys();
  linkMystRoles(root);
  linkCiteElements(root, citeTagKeys(source));
  for (const node of proseTextNodes(root)) {
    linkTextNode(node, known);
  }
}

/** JupyterLab's markdown renderer, plus citation links. */
export class CitingMarkdown extends RenderedMarkdown {
  async render(model: IRenderMime.IMimeModel): Promise<void> {
    await super.render(model);
    try {
      await linkCitations(this.node, String(model.data['text/markdown'] ?? ''));
    } catch (error) {
      console.warn('gilhub: could not link citations', error);
    }
  }
}

export const citingMarkdownFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: ['text/markdown'],
  // JupyterLab's own markdown renderer has rank 60; a lower rank wins.
  defaultRank: 59,
  createRenderer: options => new CitingMarkdown(options)
};
