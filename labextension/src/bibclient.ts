/**
 * The hub's bibliography API as seen from a user's JupyterLab (same origin:
 * the hub proxies /user/NAME/, so the hub's login cookie goes along).
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';

export interface IBibEntry {
  key: string;
  type: string;
  label: string;
  html: string;
  text: string;
  fields: { [name: string]: string };
}

/** The hub's URL prefix: page config `hubPrefix`, else derived from /user/NAME/, else /hub/. */
export function hubPrefix(): string {
  const configured = PageConfig.getOption('hubPrefix');
  if (configured) {
    return configured.endsWith('/') ? configured : configured + '/';
  }
  const match = /^(.*\/)user\/[^/]+\/$/.exec(PageConfig.getBaseUrl().replace(/^https?:\/\/[^/]+/, ''));
  return match ? match[1] + 'hub/' : '/hub/';
}

export function bibPageUrl(key?: string): string {
  const page = URLExt.join(hubPrefix(), 'bib');
  return key === undefined ? page : page + '#' + encodeURIComponent(key);
}

function apiUrl(path: string): string {
  return URLExt.join(hubPrefix(), 'api/bib', path);
}

async function getJSON<T>(url: string): Promise<T> {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  return (await response.json()) as T;
}

/** Entries fetched once per page load (null: not in the bibliography). */
const entries = new Map<string, Promise<IBibEntry | null>>();
let knownKeys: Promise<Set<string>> | null = null;

export function getEntry(key: string): Promise<IBibEntry | null> {
  let entry = entries.get(key);
  if (!entry) {
    entry = fetch(apiUrl(encodeURIComponent(key)), { credentials: 'same-origin' }).then(
      async response => {
        if (response.status === 404) {
          return null;
        }
        if (!response.ok) {
          entries.delete(key); // try again next time
          throw new Error(`${response.status} ${response.statusText}`);
        }
        return (await response.json()) as IBibEntry;
      }
    );
    entries.set(key, entry);
  }
  return entry;
}

/** Every key in the bibliography (for bare @key); refreshed by `refresh()`. */
export function getKnownKeys(): Promise<Set<string>> {
  if (!knownKeys) {
    knownKeys = getJSON<{ keys: string[] }>(apiUrl('') + '?only=keys').then(
      body => new Set(body.keys),
      () => {
        knownKeys = null;
        return new Set<string>();
      }
    );
  }
  return knownKeys;
}

export function refresh(): void {
  entries.clear();
  knownKeys = null;
}

export async function searchEntries(text: string, perPage = 20): Promise<IBibEntry[]> {
  const query = new URLSearchParams({ q: text, per_page: String(perPage), format: 'html' });
  const body = await getJSON<{ entries: IBibEntry[] }>(apiUrl('') + '?' + query.toString());
  return body.entries;
}
