/**
 * Citations in markdown, in every form the lab writes them: the same rules as
 * gilhub/bibliography/citations.py (the hub's side), so that a notebook reads
 * the same in JupyterLab and in the hub's rendered views.
 *
 * LaTeX/natbib: \cite[key], \cite{a,b}, \citep{key}, \citet{key}, \citep[p.~5]{key};
 * pandoc: [@key], [@a; @b, p. 3], [-@key], bare @key (known keys only);
 * MyST: {cite}`a,b`, {cite:t}`key`; HTML: <cite data-cite="key">.
 */

export type CitationStyle = 'parenthetical' | 'textual' | 'author' | 'year' | 'html';

export interface ICitedKey {
  key: string;
  prefix: string;
  locator: string;
  suppressAuthor: boolean;
}

export interface ICitation {
  start: number;
  end: number;
  keys: ICitedKey[];
  style: CitationStyle;
}

const KEY = '[A-Za-z0-9_][A-Za-z0-9_:.#$%&+?<>~/-]*';
const TRAILING_PUNCTUATION = /[:.#$%&+?<>~/-]+$/;

const LATEX_COMMANDS: { [name: string]: CitationStyle } = {
  cite: 'parenthetical',
  citep: 'parenthetical',
  citealp: 'parenthetical',
  parencite: 'parenthetical',
  autocite: 'parenthetical',
  footcite: 'parenthetical',
  citet: 'textual',
  citealt: 'textual',
  textcite: 'textual',
  citeauthor: 'author',
  citeyear: 'year'
};
const COMMAND_NAMES = Object.keys(LATEX_COMMANDS)
  .sort((a, b) => b.length - a.length)
  .join('|');
const LATEX_SOURCE =
  '\\\\(' + COMMAND_NAMES + ')\\*?((?:\\[[^\\[\\]\\n]*\\]){0,2})(?:\\{([^{}\\n]*)\\})?';
const BRACKET_ITEM = '(?:\\\\[A-Za-z]+\\*?(?:\\[[^\\[\\]\\n]*\\])*\\{[^{}\\n]*\\}|[^\\[\\]\\n])';
const BRACKET_SOURCE =
  '\\[(' + BRACKET_ITEM + '*?(?:@|\\\\[A-Za-z]*cite)' + BRACKET_ITEM + '*)\\](?![(\\[:])';
const PANDOC_ITEM = new RegExp(
  '^([\\s\\S]*?)(?<![\\w@])(-)?@(?:\\{([^{}]+)\\}|(' + KEY + '))([\\s\\S]*)$'
);
const BARE_SOURCE = '(?<![\\w@.+/\\\\`-])(-)?@(' + KEY + ')';
const HTML_CITE_SOURCE =
  '<cite\\b[^>]*?\\bdata-cite\\s*=\\s*(?:"([^"]*)"|\'([^\']*)\')[^>]*>([\\s\\S]*?)</cite\\s*>';
const MYST_ROLE = /\{cite(?::([a-z]+))?\}$/;

function splitKeys(text: string): string[] {
  return text
    .split(/[,;\s]+/)
    .map(key => key.trim())
    .filter(key => key.length > 0);
}

/** LaTeX notes as text: ~ is a non-breaking space, braces go. */
function note(text: string): string {
  return text.replace(/~/g, ' ').replace(/[{}]/g, '').replace(/\s+/g, ' ').trim();
}

function mystStyle(kind: string | undefined): CitationStyle {
  if (kind && kind.startsWith('t')) {
    return 'textual';
  }
  if (kind === 'author' || kind === 'year') {
    return kind;
  }
  return 'parenthetical';
}

export function mystCitation(roleText: string, keys: string): ICitedKey[] | null {
  const role = MYST_ROLE.exec(roleText);
  if (!role) {
    return null;
  }
  return splitKeys(keys).map(key => cited(key));
}

export function mystRoleStyle(roleText: string): CitationStyle {
  const role = MYST_ROLE.exec(roleText);
  return mystStyle(role ? role[1] : undefined);
}

export function endsWithMystRole(text: string): boolean {
  return MYST_ROLE.test(text);
}

function cited(key: string, prefix = '', locator = '', suppressAuthor = false): ICitedKey {
  return { key, prefix, locator, suppressAuthor };
}

function latexCitation(match: RegExpExecArray): ICitation | null {
  const [, command, optionsText, keysGroup] = match;
  let options = Array.from(optionsText.matchAll(/\[([^\[\]\n]*)\]/g), m => m[1]);
  let keysText = keysGroup;
  if (keysText === undefined) {
    // The original lab hub's form: \cite[key].
    if (command !== 'cite' || options.length !== 1) {
      return null;
    }
    keysText = options[0];
    options = [];
  }
  const keys = splitKeys(keysText);
  if (keys.length === 0) {
    return null;
  }
  let prefix = '';
  let locator = '';
  if (options.length === 1) {
    locator = note(options[0]);
  } else if (options.length === 2) {
    prefix = note(options[0]);
    locator = note(options[1]);
  }
  const items = keys.map(key => cited(key));
  items[0].prefix = prefix;
  items[items.length - 1].locator = locator;
  return {
    start: match.index,
    end: match.index + match[0].length,
    keys: items,
    style: LATEX_COMMANDS[command]
  };
}

function trimKey(key: string): string {
  return key.replace(TRAILING_PUNCTUATION, '');
}

function bracketItems(body: string): ICitedKey[] | null {
  const items: ICitedKey[] = [];
  for (const item of body.split(';')) {
    const latex = new RegExp(LATEX_SOURCE).exec(item);
    if (
      latex &&
      item.slice(0, latex.index).trim() === '' &&
      item.slice(latex.index + latex[0].length).trim() === ''
    ) {
      const citation = latexCitation(latex);
      if (!citation) {
        return null;
      }
      items.push(...citation.keys);
      continue;
    }
    const match = PANDOC_ITEM.exec(item.trim());
    if (!match) {
      return null;
    }
    const rawKey = match[3] ?? match[4];
    const key = trimKey(rawKey);
    const locator = (rawKey.slice(key.length) + match[5]).trim().replace(/^,/, '').trim();
    items.push(cited(key, match[1].trim(), locator, match[2] === '-'));
  }
  return items;
}

/** Blank out ranges (keeping newlines and offsets). */
function mask(text: string, ranges: Array<[number, number]>): string {
  const chars = text.split('');
  for (const [start, end] of ranges) {
    for (let i = start; i < end; i++) {
      if (chars[i] !== '\n') {
        chars[i] = ' ';
      }
    }
  }
  return chars.join('');
}

function fencedRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  const fence = /^ {0,3}(`{3,}|~{3,})[^\n]*$/gm;
  let match: RegExpExecArray | null;
  while ((match = fence.exec(text))) {
    const marker = match[1];
    const closing = new RegExp(
      '^ {0,3}' + (marker[0] === '`' ? '`' : '~') + '{' + marker.length + ',}[ \\t]*$',
      'gm'
    );
    closing.lastIndex = match.index + match[0].length;
    const end = closing.exec(text);
    const stop = end ? end.index + end[0].length : text.length;
    ranges.push([match.index, stop]);
    fence.lastIndex = stop;
  }
  return ranges;
}

function codeSpansAndRoles(text: string): [Array<[number, number]>, ICitation[]] {
  const protectedRanges: Array<[number, number]> = [];
  const roles: ICitation[] = [];
  const span = /(?<!`)(`+)(?!`)([\s\S]+?)(?<!`)\1(?!`)/g;
  let match: RegExpExecArray | null;
  while ((match = span.exec(text))) {
    const head = text.slice(Math.max(0, match.index - 20), match.index);
    const role = /\{cite(?::[a-z]+)?\}$/.exec(head);
    if (role && match[1].length === 1) {
      roles.push({
        start: match.index - role[0].length,
        end: match.index + match[0].length,
        keys: splitKeys(match[2]).map(key => cited(key)),
        style: mystRoleStyle(role[0])
      });
    } else {
      protectedRanges.push([match.index, match.index + match[0].length]);
    }
  }
  return [protectedRanges, roles];
}

function* candidates(masked: string, known?: Set<string>): Generator<ICitation> {
  for (const match of masked.matchAll(new RegExp(BRACKET_SOURCE, 'g'))) {
    const items = bracketItems(match[1]);
    if (items && items.length) {
      yield {
        start: match.index!,
        end: match.index! + match[0].length,
        keys: items,
        style: 'parenthetical'
      };
    }
  }
  for (const match of masked.matchAll(new RegExp(LATEX_SOURCE, 'g'))) {
    const citation = latexCitation(match as RegExpExecArray);
    if (citation) {
      yield citation;
    }
  }
  for (const match of masked.matchAll(new RegExp(HTML_CITE_SOURCE, 'gi'))) {
    const keys = splitKeys(match[1] ?? match[2] ?? '');
    if (keys.length) {
      yield {
        start: match.index!,
        end: match.index! + match[0].length,
        keys: keys.map(key => cited(key)),
        style: 'html'
      };
    }
  }
  if (known && known.size) {
    for (const match of masked.matchAll(new RegExp(BARE_SOURCE, 'g'))) {
      const key = trimKey(match[2]);
      if (known.has(key)) {
        const keyStart = match.index! + match[0].length - match[2].length;
        yield {
          start: match.index!,
          end: keyStart + key.length,
          keys: [cited(key, '', '', match[1] === '-')],
          style: 'textual'
        };
      }
    }
  }
}

/**
 * Every citation in markdown text, in order, none overlapping. Bare @key
 * counts only when key is in `known`. Code spans and fenced code are skipped.
 */
export function findCitations(text: string, known?: Set<string>): ICitation[] {
  const outsideFences = mask(text, fencedRanges(text));
  const [codeSpans, roles] = codeSpansAndRoles(outsideFences);
  const masked = mask(
    outsideFences,
    codeSpans.concat(roles.map(role => [role.start, role.end] as [number, number]))
  );
  const found = [...roles, ...candidates(masked, known)].sort(
    (a, b) => a.start - b.start || b.end - b.start - (a.end - a.start)
  );
  const citations: ICitation[] = [];
  for (const citation of found) {
    if (!citations.length || citation.start >= citations[citations.length - 1].end) {
      citations.push(citation);
    }
  }
  return citations;
}

/** The distinct keys cited, in order of first citation. */
export function citedKeys(text: string, known?: Set<string>): string[] {
  const keys: string[] = [];
  for (const citation of findCitations(text, known)) {
    for (const item of citation.keys) {
      if (!keys.includes(item.key)) {
        keys.push(item.key);
      }
    }
  }
  return keys;
}

/**
 * For each <cite> tag of markdown text (outside code), in order, its data-cite keys
 * (empty for a plain <cite>). JupyterLab's sanitizer drops data-* attributes from the
 * rendered HTML, so the rendered <cite> elements are matched to these by position.
 */
export function citeTagKeys(text: string): string[][] {
  const outsideFences = mask(text, fencedRanges(text));
  const masked = mask(outsideFences, codeSpansAndRoles(outsideFences)[0]);
  return Array.from(masked.matchAll(/<cite\b([^>]*)>/gi), match => {
    const attribute = /\bdata-cite\s*=\s*(?:"([^"]*)"|'([^']*)')/i.exec(match[1]);
    return attribute ? splitKeys(attribute[1] ?? attribute[2] ?? '') : [];
  });
}
