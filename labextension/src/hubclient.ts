/**
 * Calls to the hub's REST API from a user's JupyterLab: same origin (the hub
 * proxies /user/NAME/), so the hub's login cookie goes along; state-changing
 * calls carry the hub's XSRF token, fetched once from /hub/api/repo/xsrf.
 */
import { URLExt } from '@jupyterlab/coreutils';

import { hubPrefix } from './bibclient';

/** An error answer of the hub: its status and its JSON body (``message`` and details). */
export class HubError extends Error {
  constructor(readonly status: number, readonly answer: { [key: string]: any }) {
    super(answer.message || `HTTP ${status}`);
  }
}

let xsrfToken: Promise<string> | null = null;

export function hubApiUrl(path: string): string {
  return URLExt.join(hubPrefix(), 'api', path);
}

async function xsrf(): Promise<string> {
  if (!xsrfToken) {
    xsrfToken = fetch(hubApiUrl('repo/xsrf'), { credentials: 'same-origin' }).then(async response => {
      if (!response.ok) {
        xsrfToken = null;
        throw new Error(`the hub refused (${response.status}): are you logged in?`);
      }
      return ((await response.json()) as { xsrf: string }).xsrf;
    });
  }
  return xsrfToken;
}

async function answerOf<T>(response: Response): Promise<T> {
  const answer = (await response.json().catch(() => ({}))) as T & { [key: string]: any };
  if (!response.ok) {
    throw new HubError(response.status, answer);
  }
  return answer;
}

export async function getJson<T>(path: string, query: { [name: string]: string } = {}): Promise<T> {
  const url = hubApiUrl(path) + URLExt.objectToQueryString(query);
  return answerOf<T>(await fetch(url, { credentials: 'same-origin' }));
}

export async function postJson<T>(path: string, body: object): Promise<T> {
  const response = await fetch(hubApiUrl(path), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-XSRFToken': await xsrf() },
    body: JSON.stringify(body)
  });
  return answerOf<T>(response);
}

export async function deleteJson(path: string, query: { [name: string]: string } = {}): Promise<void> {
  const response = await fetch(hubApiUrl(path) + URLExt.objectToQueryString(query), {
    method: 'DELETE',
    credentials: 'same-origin',
    headers: { 'X-XSRFToken': await xsrf() }
  });
  if (!response.ok) {
    await answerOf(response);
  }
}

export function messageOf(error: unknown): string {
  return String(error instanceof Error ? error.message : error);
}
