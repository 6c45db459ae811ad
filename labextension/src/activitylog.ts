/**
 * The activity record's logic without JupyterLab (issue 13), so node can test it:
 * what an execution event says (status, error, output hash), the queue that sends
 * events in batches, and the queue of questions waiting to be asked.
 *
 * The wire format is the contract in ACTIVITY_API.md (POST {server}gilhub/activity).
 */

export interface IExecutionEvent {
  type: 'execution';
  path: string;
  cell_id: string;
  source: string;
  /** sha256 of the whole source, sent only when `source` had to be cut (see `fitSource`) */
  source_sha256?: string;
  execution_count: number | null;
  started: string;
  ended: string;
  status: 'ok' | 'error';
  ename?: string;
  evalue?: string;
  output_hash: string;
}

export interface INotebookEvent {
  type: 'open' | 'save' | 'close';
  path: string;
  time: string;
}

export type ActivityEvent = IExecutionEvent | INotebookEvent;

export interface IPrompt {
  prompt_id: string;
  path: string;
  cell_id: string;
  cell_version: string;
  question: string;
}

export interface IActivityAnswer {
  enabled: boolean;
  mode: 'continuous' | 'end' | 'off';
  prompts: IPrompt[];
}

/** The server's limits on one POST (ACTIVITY_API.md): beyond them it answers 400/413. */
export const MAX_EVENTS_PER_POST = 200;
export const MAX_BYTES_PER_POST = 1024 * 1024;
/** What a request with the browser's keepalive may carry (all of them in flight together,
 * in the Fetch standard): the one request a page going away sends. */
export const MAX_KEEPALIVE_BYTES = 64 * 1024;
/** A source longer than this is sent cut, with the hash of the whole (a 10 MB cell). */
export const MAX_SOURCE_CHARS = 64 * 1024;
/** The server refuses a longer error name (and with it the whole batch). */
export const MAX_ENAME_CHARS = 256;

// ---------------------------------------------------------------- hashing

const ROUND_CONSTANTS = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);

function rotr(value: number, bits: number): number {
  return (value >>> bits) | (value << (32 - bits));
}

/**
 * SHA-256 (FIPS 180-4) in plain TypeScript, for pages that are not a secure context:
 * a hub served over plain http on a lab network has no `crypto.subtle`.
 */
export function sha256Fallback(bytes: Uint8Array): Uint8Array {
  const bitLength = bytes.length * 8;
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 2 ** 32));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const hash = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  ]);
  const words = new Uint32Array(64);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) {
      words[i] = view.getUint32(block + i * 4);
    }
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(words[i - 15], 7) ^ rotr(words[i - 15], 18) ^ (words[i - 15] >>> 3);
      const s1 = rotr(words[i - 2], 17) ^ rotr(words[i - 2], 19) ^ (words[i - 2] >>> 10);
      words[i] = words[i - 16] + s0 + words[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, h] = hash;
    for (let i = 0; i < 64; i++) {
      const t1 =
        h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + ROUND_CONSTANTS[i] + words[i];
      const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      [h, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, h].forEach((value, i) => (hash[i] = hash[i] + value));
  }
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  hash.forEach((value, i) => out.setUint32(i * 4, value));
  return digest;
}

/** The sha256 of a text's UTF-8 bytes, as hex: `crypto.subtle` where the page has it. */
export async function sha256Hex(text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  const subtle = globalThis.crypto?.subtle;
  const digest = subtle ? new Uint8Array(await subtle.digest('SHA-256', bytes)) : sha256Fallback(bytes);
  return Array.from(digest, byte => byte.toString(16).padStart(2, '0')).join('');
}

/** The hash the server compares outputs by: sha256 of `JSON.stringify(outputs)`. */
export function outputHash(outputs: unknown[]): Promise<string> {
  return sha256Hex(JSON.stringify(outputs));
}

// ---------------------------------------------------------------- what an execution says

interface IOutput {
  output_type?: string;
  ename?: string;
  evalue?: string;
}

/**
 * ok, or error with the `ename`/`evalue` of the first error output; `failure` (what the
 * kernel's reply said, when the execution failed) counts when no output shows the error.
 */
export function executionStatus(
  outputs: unknown[],
  failure: { ename: string; evalue: string } | null = null
): Pick<IExecutionEvent, 'status' | 'ename' | 'evalue'> {
  const error = (outputs as IOutput[]).find(output => output?.output_type === 'error') ?? failure;
  if (!error) {
    return { status: 'ok' };
  }
  const ename = String(error.ename ?? '').slice(0, MAX_ENAME_CHARS);
  return { status: 'error', ename, evalue: String(error.evalue ?? '') };
}

/** The source as sent: whole, or its first MAX_SOURCE_CHARS with the hash of the whole. */
export async function fitSource(source: string): Promise<Pick<IExecutionEvent, 'source' | 'source_sha256'>> {
  if (source.length <= MAX_SOURCE_CHARS) {
    return { source };
  }
  return { source: source.slice(0, MAX_SOURCE_CHARS), source_sha256: await sha256Hex(source) };
}

/**
 * When a cell really started: cells of one notebook run one after the other, so a cell
 * scheduled during "Run All" starts when the one before it ended, not when it was queued.
 */
export class NotebookClock {
  private readonly lastEnded = new Map<string, number>();

  /** The start of a run that ended at `ended` (never after it, even if the clock jumped). */
  run(notebook: string, scheduled: number, ended: number): number {
    const started = Math.min(Math.max(scheduled, this.lastEnded.get(notebook) ?? 0), ended);
    this.lastEnded.set(notebook, ended);
    return started;
  }

  forget(notebook: string): void {
    this.lastEnded.delete(notebook);
  }
}

// ---------------------------------------------------------------- batches

function encodedLength(event: ActivityEvent): number {
  return new TextEncoder().encode(JSON.stringify(event)).length + 1; // and its comma
}

/** Split events into POST bodies within the server's limits, in order. */
export function splitIntoBatches(
  events: ActivityEvent[],
  maxEvents = MAX_EVENTS_PER_POST,
  maxBytes = MAX_BYTES_PER_POST
): ActivityEvent[][] {
  const envelope = '{"events":[]}'.length;
  const batches: ActivityEvent[][] = [];
  let batch: ActivityEvent[] = [];
  let bytes = envelope;
  for (const event of events) {
    const size = encodedLength(event);
    if (batch.length && (batch.length >= maxEvents || bytes + size > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = envelope;
    }
    batch.push(event);
    bytes += size;
  }
  if (batch.length) {
    batches.push(batch);
  }
  return batches;
}

/** The newest events that fit in one POST, in order: a page going away can send one
 * keepalive request, and its notebooks' closes, the newest events, must be in it. */
export function newestBatch(
  events: ActivityEvent[],
  maxEvents = MAX_EVENTS_PER_POST,
  maxBytes = MAX_KEEPALIVE_BYTES
): ActivityEvent[] {
  const [newest = []] = splitIntoBatches([...events].reverse(), maxEvents, maxBytes);
  return newest.reverse();
}

/** The server refused a batch as bad (an HTTP 4xx): sending it again cannot help. */
export class RefusedError extends Error {}

export interface IQueueOptions {
  /** POST one batch; resolve with the server's answer, reject on network or HTTP errors
   * (with a RefusedError when trying again cannot help). */
  send: (events: ActivityEvent[], keepalive: boolean) => Promise<IActivityAnswer>;
  /** Called with every answer (it may carry prompts). */
  onAnswer?: (answer: IActivityAnswer) => void;
  /** Send when this many events wait ... */
  batchSize?: number;
  /** ... or this long after the first of them arrived. */
  intervalMs?: number;
  /** Tries per batch (the first included) before it is dropped. */
  attempts?: number;
  /** Wait before the second try; doubled for each further one. */
  retryDelayMs?: number;
  /** Events kept while the server cannot be reached; the oldest go first. */
  maxQueued?: number;
}

/**
 * Events waiting to be sent. Adding never waits and never throws: the page and the
 * kernel go on whatever happens to the record. A batch that cannot be delivered is
 * retried a few times, then dropped and counted; `enabled: false` from the server
 * stops the queue for the rest of the session.
 */
export class ActivityQueue {
  private readonly options: Required<Omit<IQueueOptions, 'onAnswer'>> & Pick<IQueueOptions, 'onAnswer'>;
  private waiting: ActivityEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private sending: Promise<void> | null = null;
  private stopped = false;
  /** Events given up on (undeliverable, or pushed out of a full queue). */
  dropped = 0;

  constructor(options: IQueueOptions) {
    this.options = {
      batchSize: 20,
      intervalMs: 5000,
      attempts: 3,
      retryDelayMs: 1000,
      maxQueued: 2000,
      ...options
    };
  }

  /** False once the server said recording is off (for this page's life). */
  get enabled(): boolean {
    return !this.stopped;
  }

  get pending(): number {
    return this.waiting.length;
  }

  add(event: ActivityEvent): void {
    if (this.stopped) {
      return;
    }
    this.waiting.push(event);
    const excess = this.waiting.length - this.options.maxQueued;
    if (excess > 0) {
      this.waiting.splice(0, excess);
      this.dropped += excess;
    }
    if (this.waiting.length >= this.options.batchSize) {
      void this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.options.intervalMs);
    }
  }

  /**
   * The page is going away: `last` (its notebooks' closes) joins what waits, and the newest
   * of it that one keepalive request carries is sent at once; nothing waits for the answer.
   */
  leave(last: ActivityEvent[]): void {
    if (!this.stopped) {
      this.waiting.push(...last); // not add(): a full batch would go without keepalive
    }
    void this.flush(true);
  }

  /**
   * Send everything waiting now. With `keepalive` (the page is going away) only the newest
   * events one keepalive request carries are sent, once, and not retried.
   */
  async flush(keepalive = false): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.sending && !keepalive) {
      await this.sending; // one flush at a time keeps the events in order
    }
    const events = this.waiting;
    this.waiting = [];
    if (this.stopped || !events.length) {
      return;
    }
    const run = this.deliver(events, keepalive);
    this.sending = run;
    try {
      await run;
    } finally {
      if (this.sending === run) {
        this.sending = null;
      }
    }
  }

  /** Stop for good: the server said recording is off. */
  stop(): void {
    this.stopped = true;
    this.dropped += this.waiting.length;
    this.waiting = [];
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async deliver(events: ActivityEvent[], keepalive: boolean): Promise<void> {
    const batches = keepalive ? [newestBatch(events)] : splitIntoBatches(events);
    this.dropped += events.length - batches.reduce((sent, batch) => sent + batch.length, 0);
    for (const batch of batches) {
      if (this.stopped) {
        this.dropped += batch.length;
        continue;
      }
      const answer = await this.sendWithRetries(batch, keepalive);
      if (!answer) {
        this.dropped += batch.length;
        continue;
      }
      if (answer.enabled === false) {
        this.stop();
      }
      this.options.onAnswer?.(answer);
    }
  }

  private async sendWithRetries(batch: ActivityEvent[], keepalive: boolean): Promise<IActivityAnswer | null> {
    const attempts = keepalive ? 1 : this.options.attempts;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.options.send(batch, keepalive);
      } catch (error) {
        if (error instanceof RefusedError) {
          break;
        }
        if (attempt < attempts) {
          await new Promise(resolve => setTimeout(resolve, this.options.retryDelayMs * 2 ** (attempt - 1)));
        }
      }
    }
    return null;
  }
}

// ---------------------------------------------------------------- questions

/**
 * Questions waiting to be asked, one at a time per notebook, each once. After "Don't ask
 * in this notebook" that notebook's questions are dropped, and later ones too.
 */
export class PromptQueue {
  private readonly waiting: IPrompt[] = [];
  private readonly seen = new Set<string>();
  private readonly silenced = new Set<string>();
  private readonly showing = new Map<string, IPrompt>();
  /** Closed notebooks whose waiting questions were offered already (see `closedToOffer`). */
  private readonly offered = new Set<string>();

  /** Add new questions; returns how many were new. */
  add(prompts: IPrompt[]): number {
    let added = 0;
    for (const prompt of prompts) {
      if (this.seen.has(prompt.prompt_id) || this.silenced.has(prompt.path)) {
        continue;
      }
      this.seen.add(prompt.prompt_id);
      this.waiting.push(prompt);
      this.offered.delete(prompt.path);
      added++;
    }
    return added;
  }

  /**
   * The notebooks to offer questions about now although they are not open (`isOpen`):
   * "end" mode asks when a notebook is closed, and the user should hear of it then, not
   * when they next open it. Each arrival of questions is offered once; questions about a
   * notebook that is open are shown beside their cells instead.
   */
  closedToOffer(isOpen: (path: string) => boolean): string[] {
    const paths = this.pathsReady().filter(path => !isOpen(path) && !this.offered.has(path));
    paths.forEach(path => this.offered.add(path));
    return paths;
  }

  /** How many questions about `path` wait to be asked (the one on screen not counted). */
  waitingFor(path: string): number {
    return this.waiting.filter(prompt => prompt.path === path).length;
  }

  /** Whether anything about `path` is left to ask: waiting, or on screen. */
  has(path: string): boolean {
    return this.showing.has(path) || this.waitingFor(path) > 0;
  }

  /** The notebooks that have a question waiting and none on screen. */
  pathsReady(): string[] {
    return [...new Set(this.waiting.map(prompt => prompt.path))].filter(path => !this.showing.has(path));
  }

  /**
   * The next question for `path` whose cell `hasCell` finds, now marked as on screen;
   * null when one is on screen already or none can be placed.
   */
  take(path: string, hasCell: (cellId: string) => boolean = () => true): IPrompt | null {
    if (this.showing.has(path)) {
      return null;
    }
    const index = this.waiting.findIndex(prompt => prompt.path === path && hasCell(prompt.cell_id));
    if (index < 0) {
      return null;
    }
    const [prompt] = this.waiting.splice(index, 1);
    this.showing.set(path, prompt);
    return prompt;
  }

  /** The question on screen was answered or skipped (or its cell went away). */
  done(prompt: IPrompt): void {
    if (this.showing.get(prompt.path)?.prompt_id === prompt.prompt_id) {
      this.showing.delete(prompt.path);
    }
  }

  /** Put a question that could not be answered now back at the front. */
  putBack(prompt: IPrompt): void {
    this.done(prompt);
    if (!this.silenced.has(prompt.path)) {
      this.waiting.unshift(prompt);
    }
  }

  /** "Don't ask in this notebook": drop its questions, now and for this session. */
  silence(path: string): void {
    this.silenced.add(path);
    this.showing.delete(path);
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i].path === path) {
        this.waiting.splice(i, 1);
      }
    }
  }

  /** A notebook was renamed: its questions follow it. */
  rename(oldPath: string, newPath: string): void {
    for (const prompt of this.waiting) {
      if (prompt.path === oldPath) {
        prompt.path = newPath;
      }
    }
    const shown = this.showing.get(oldPath);
    if (shown) {
      this.showing.delete(oldPath);
      shown.path = newPath;
      this.showing.set(newPath, shown);
    }
  }

  get size(): number {
    return this.waiting.length;
  }
}

/** The notification that offers the questions about a notebook just closed. */
export function closedOffer(path: string, count: number): string {
  const name = path.replace(/^.*\//, '');
  const questions = count === 1 ? 'a question' : `${count} questions`;
  return `You closed ${name}: ${questions} about what you were trying to do in it, to answer in a side panel without opening it again.`;
}
