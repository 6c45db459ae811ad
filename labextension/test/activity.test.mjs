// The activity record's logic (src/activitylog.ts): hashing, what an execution says,
// batches within the server's limits, the send queue, and the questions waiting.
// Run: python labextension/build.py --test
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const log = require('./build/activitylog.js');

const nodeSha256 = text => createHash('sha256').update(text, 'utf8').digest('hex');
const hex = bytes => Buffer.from(bytes).toString('hex');

function execution(n, extra = {}) {
  return {
    type: 'execution',
    path: 'a.ipynb',
    cell_id: `cell-${n}`,
    source: `x = ${n}`,
    execution_count: n,
    started: '2026-11-29T09:00:00.000Z',
    ended: '2026-11-29T09:00:01.000Z',
    status: 'ok',
    output_hash: '0'.repeat(64),
    ...extra
  };
}

const answer = (prompts = [], enabled = true) => ({ enabled, mode: enabled ? 'continuous' : 'off', prompts });

function prompt(id, path = 'a.ipynb', cell = 'c1') {
  return { prompt_id: id, path, cell_id: cell, cell_version: 'v', question: 'What are you trying to do?' };
}

// ------------------------------------------------------------------ hashing

for (const text of ['', 'abc', 'print(1)', 'é∑😀', 'a'.repeat(55), 'b'.repeat(56), 'c'.repeat(64), 'd'.repeat(1000)]) {
  test(`the fallback sha256 agrees with node's (${text.length} chars)`, () => {
    assert.equal(hex(log.sha256Fallback(new TextEncoder().encode(text))), nodeSha256(text));
  });
}

test('sha256Hex hashes the UTF-8 bytes, with or without crypto.subtle', async () => {
  assert.equal(await log.sha256Hex('naïve'), nodeSha256('naïve'));
  const subtle = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true });
  try {
    assert.equal(await log.sha256Hex('naïve'), nodeSha256('naïve'));
  } finally {
    Object.defineProperty(globalThis, 'crypto', subtle);
  }
});

test('the output hash is the sha256 of the outputs as JSON', async () => {
  const outputs = [{ output_type: 'stream', name: 'stdout', text: '1\n' }];
  assert.equal(await log.outputHash(outputs), nodeSha256(JSON.stringify(outputs)));
  assert.equal(await log.outputHash([]), nodeSha256('[]'));
});

// ------------------------------------------------------------------ what an execution says

test('an execution without an error output is ok', () => {
  assert.deepEqual(log.executionStatus([]), { status: 'ok' });
  assert.deepEqual(log.executionStatus([{ output_type: 'execute_result', data: {} }]), { status: 'ok' });
});

test('the first error output gives ename and evalue', () => {
  const outputs = [
    { output_type: 'stream', name: 'stdout', text: 'before\n' },
    { output_type: 'error', ename: 'NameError', evalue: "name 'x' is not defined", traceback: [] },
    { output_type: 'error', ename: 'Later', evalue: 'ignored', traceback: [] }
  ];
  assert.deepEqual(log.executionStatus(outputs), {
    status: 'error',
    ename: 'NameError',
    evalue: "name 'x' is not defined"
  });
});

test("a failed execution without an error output takes the kernel's error", () => {
  const failure = { ename: 'KeyboardInterrupt', evalue: '' };
  assert.deepEqual(log.executionStatus([], failure), { status: 'error', ename: 'KeyboardInterrupt', evalue: '' });
  const shown = [{ output_type: 'error', ename: 'ValueError', evalue: 'bad' }];
  assert.equal(log.executionStatus(shown, failure).ename, 'ValueError');
});

test('an error output without names still counts as an error', () => {
  assert.deepEqual(log.executionStatus([{ output_type: 'error' }]), { status: 'error', ename: '', evalue: '' });
});

test('a short source goes whole, a huge one cut with the hash of the whole', async () => {
  assert.deepEqual(await log.fitSource('print(1)'), { source: 'print(1)' });
  const huge = 'x'.repeat(10 * 1024 * 1024);
  const fitted = await log.fitSource(huge);
  assert.equal(fitted.source.length, log.MAX_SOURCE_CHARS);
  assert.equal(fitted.source_sha256, nodeSha256(huge));
});

test('a cell queued by Run All starts when the one before it ended', () => {
  const clock = new log.NotebookClock();
  assert.equal(clock.run('a.ipynb', 100, 250), 100);
  assert.equal(clock.run('a.ipynb', 110, 400), 250, 'queued at 110, waited for the first');
  assert.equal(clock.run('a.ipynb', 500, 600), 500);
  assert.equal(clock.run('b.ipynb', 110, 120), 110, 'another notebook, another kernel');
  clock.forget('a.ipynb');
  assert.equal(clock.run('a.ipynb', 110, 120), 110);
});

test('a run never ends before it starts, even when the clock jumps back', () => {
  const clock = new log.NotebookClock();
  clock.run('a.ipynb', 100, 1000);
  assert.equal(clock.run('a.ipynb', 900, 950), 950);
});

test('an overlong error name is cut to what the server takes', () => {
  const status = log.executionStatus([{ output_type: 'error', ename: 'E'.repeat(1000), evalue: 'v' }]);
  assert.equal(status.ename.length, log.MAX_ENAME_CHARS);
});

// ------------------------------------------------------------------ batches

test('batches keep the order and at most maxEvents each', () => {
  const events = Array.from({ length: 450 }, (_, n) => execution(n));
  const batches = log.splitIntoBatches(events);
  assert.deepEqual(batches.map(batch => batch.length), [200, 200, 50]);
  assert.deepEqual(batches.flat(), events);
});

test('batches stay under the byte limit', () => {
  const big = 'y'.repeat(log.MAX_SOURCE_CHARS);
  const events = Array.from({ length: 40 }, (_, n) => execution(n, { source: big }));
  const batches = log.splitIntoBatches(events);
  assert.ok(batches.length > 1);
  for (const batch of batches) {
    assert.ok(JSON.stringify({ events: batch }).length <= log.MAX_BYTES_PER_POST);
  }
  assert.deepEqual(batches.flat(), events);
});

test('bytes, not characters, count toward the limit', () => {
  const events = [execution(1, { source: '€'.repeat(300) }), execution(2, { source: '€'.repeat(300) })];
  const oneEventBytes = Buffer.byteLength(JSON.stringify(events[0]));
  assert.equal(log.splitIntoBatches(events, 200, oneEventBytes + 20).length, 2);
});

// ------------------------------------------------------------------ the send queue

function recordingQueue(options = {}) {
  const posts = [];
  const answers = [];
  const queue = new log.ActivityQueue({
    send: async (events, keepalive) => {
      posts.push({ events, keepalive });
      return answer();
    },
    onAnswer: a => answers.push(a),
    intervalMs: 20,
    retryDelayMs: 1,
    ...options
  });
  return { queue, posts, answers };
}

const pause = ms => new Promise(resolve => setTimeout(resolve, ms));

test('a full batch is sent at once, in order', async () => {
  const { queue, posts } = recordingQueue({ batchSize: 3, intervalMs: 60_000 });
  queue.add(execution(1));
  queue.add(execution(2));
  assert.equal(posts.length, 0);
  queue.add(execution(3));
  await queue.flush();
  assert.deepEqual(posts[0].events.map(e => e.execution_count), [1, 2, 3]);
  assert.equal(posts[0].keepalive, false);
});

test('a partial batch is sent after the interval', async () => {
  const { queue, posts } = recordingQueue({ batchSize: 20, intervalMs: 10 });
  queue.add(execution(1));
  assert.equal(posts.length, 0);
  await pause(50);
  assert.equal(posts.length, 1);
  assert.equal(queue.pending, 0);
});

test('a flush on close sends once with keepalive', async () => {
  let tries = 0;
  const { queue, posts } = recordingQueue({
    send: async (events, keepalive) => {
      tries++;
      posts.push({ events, keepalive });
      throw new TypeError('Failed to fetch');
    }
  });
  queue.add({ type: 'close', path: 'a.ipynb', time: '2026-11-29T09:00:00.000Z' });
  await queue.flush(true);
  assert.equal(tries, 1);
  assert.equal(posts[0].keepalive, true);
  assert.equal(queue.dropped, 1);
});

test('the newest batch keeps the newest events, in order, within the keepalive limit', () => {
  const events = [1, 2, 3, 4].map(n => execution(n, { source: 'x'.repeat(30_000) }));
  const newest = log.newestBatch(events);
  assert.deepEqual(newest.map(e => e.execution_count), [3, 4]);
  assert.ok(Buffer.byteLength(JSON.stringify({ events: newest })) <= log.MAX_KEEPALIVE_BYTES);
  assert.deepEqual(log.newestBatch(events.slice(0, 1)), events.slice(0, 1));
  assert.deepEqual(log.newestBatch([]), []);
});

test("a page going away sends its closes with what waits, in one keepalive request", async () => {
  const { queue, posts } = recordingQueue({ batchSize: 3, intervalMs: 60_000 });
  queue.add(execution(1, { source: 'x'.repeat(50_000) }));
  queue.add(execution(2, { source: 'y'.repeat(20_000) }));
  const closes = ['a.ipynb', 'b.ipynb'].map(path => ({ type: 'close', path, time: '2026-11-29T09:00:02.000Z' }));
  queue.leave(closes); // three waiting or more: a plain flush would go without keepalive
  await pause(5);
  assert.equal(posts.length, 1);
  assert.equal(posts[0].keepalive, true);
  assert.deepEqual(posts[0].events, [execution(2, { source: 'y'.repeat(20_000) }), ...closes]);
  assert.ok(Buffer.byteLength(JSON.stringify({ events: posts[0].events })) <= log.MAX_KEEPALIVE_BYTES);
  assert.equal(queue.dropped, 1); // the oldest did not fit
});

test('a page going away sends nothing once recording is off', async () => {
  const { queue, posts } = recordingQueue();
  queue.stop();
  queue.leave([{ type: 'close', path: 'a.ipynb', time: '2026-11-29T09:00:02.000Z' }]);
  await pause(5);
  assert.equal(posts.length, 0);
});

test('a network error is retried a bounded number of times, then the batch is dropped', async () => {
  let tries = 0;
  const { queue } = recordingQueue({
    attempts: 3,
    send: async () => {
      tries++;
      throw new TypeError('Failed to fetch');
    }
  });
  queue.add(execution(1));
  queue.add(execution(2));
  await queue.flush();
  assert.equal(tries, 3);
  assert.equal(queue.dropped, 2);
  assert.ok(queue.enabled, 'a network error does not switch recording off');
});

test('a batch the server refused as bad is not sent again', async () => {
  let tries = 0;
  const { queue } = recordingQueue({
    send: async () => {
      tries++;
      throw new log.RefusedError('413');
    }
  });
  queue.add(execution(1));
  await queue.flush();
  assert.equal(tries, 1);
  assert.equal(queue.dropped, 1);
});

test('a retry that succeeds loses nothing', async () => {
  let tries = 0;
  const { queue, answers } = recordingQueue({
    send: async events => {
      tries++;
      if (tries === 1) {
        throw new TypeError('Failed to fetch');
      }
      return answer([prompt('p1')]);
    }
  });
  queue.add(execution(1));
  await queue.flush();
  assert.equal(queue.dropped, 0);
  assert.deepEqual(answers[0].prompts.map(p => p.prompt_id), ['p1']);
});

test('enabled:false stops the queue for the session', async () => {
  const { queue, posts } = recordingQueue({ send: async events => (posts.push({ events }), answer([], false)) });
  queue.add(execution(1));
  await queue.flush();
  assert.equal(queue.enabled, false);
  queue.add(execution(2));
  await queue.flush();
  assert.equal(posts.length, 1);
  assert.equal(queue.pending, 0);
});

test('adding never waits for the network', async () => {
  let release;
  const { queue } = recordingQueue({
    batchSize: 1,
    send: () => new Promise(resolve => (release = () => resolve(answer())))
  });
  queue.add(execution(1)); // starts a send that hangs
  queue.add(execution(2)); // returns at once all the same
  assert.ok(release);
  release();
  await queue.flush();
});

test('a queue that cannot send keeps only the newest events', () => {
  const { queue } = recordingQueue({ batchSize: 1000, maxQueued: 5, intervalMs: 60_000 });
  for (let n = 0; n < 8; n++) {
    queue.add(execution(n));
  }
  assert.equal(queue.pending, 5);
  assert.equal(queue.dropped, 3);
  queue.stop();
});

test('flushes one after the other keep the events in order', async () => {
  const { queue, posts } = recordingQueue({
    batchSize: 1000,
    intervalMs: 60_000,
    send: async events => {
      await pause(5);
      posts.push({ events });
      return answer();
    }
  });
  queue.add(execution(1));
  const first = queue.flush();
  queue.add(execution(2));
  await Promise.all([first, queue.flush()]);
  assert.deepEqual(posts.map(p => p.events[0].execution_count), [1, 2]);
});

// ------------------------------------------------------------------ questions

test('questions are asked once each, one at a time per notebook', () => {
  const queue = new log.PromptQueue();
  assert.equal(queue.add([prompt('p1'), prompt('p2'), prompt('p1')]), 2);
  assert.equal(queue.add([prompt('p1')]), 0, 'a question seen before is not asked again');
  assert.equal(queue.take('a.ipynb').prompt_id, 'p1');
  assert.equal(queue.take('a.ipynb'), null, 'one on screen per notebook');
  queue.done(prompt('p1'));
  assert.equal(queue.take('a.ipynb').prompt_id, 'p2');
});

test('a question waits until its cell can be shown', () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1', 'a.ipynb', 'gone'), prompt('p2', 'a.ipynb', 'here')]);
  assert.equal(queue.take('a.ipynb', id => id === 'here').prompt_id, 'p2');
  queue.done(prompt('p2', 'a.ipynb', 'here'));
  assert.equal(queue.take('a.ipynb', id => id === 'here'), null);
  assert.equal(queue.size, 1);
});

test('notebooks with questions ready are listed, not those with one on screen', () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1', 'a.ipynb'), prompt('p2', 'b.ipynb'), prompt('p3', 'b.ipynb')]);
  assert.deepEqual(queue.pathsReady(), ['a.ipynb', 'b.ipynb']);
  queue.take('b.ipynb');
  assert.deepEqual(queue.pathsReady(), ['a.ipynb']);
});

test("don't ask in this notebook drops its questions, now and later", () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1', 'a.ipynb'), prompt('p2', 'a.ipynb'), prompt('p3', 'b.ipynb')]);
  queue.take('a.ipynb');
  queue.silence('a.ipynb');
  assert.equal(queue.take('a.ipynb'), null);
  assert.equal(queue.add([prompt('p4', 'a.ipynb')]), 0);
  assert.equal(queue.take('b.ipynb').prompt_id, 'p3');
});

test('a question that could not be sent goes back to the front', () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1'), prompt('p2')]);
  const first = queue.take('a.ipynb');
  queue.putBack(first);
  assert.equal(queue.take('a.ipynb').prompt_id, 'p1');
});

test('questions follow a renamed notebook', () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1', 'old.ipynb'), prompt('p2', 'old.ipynb')]);
  const shown = queue.take('old.ipynb');
  queue.rename('old.ipynb', 'new.ipynb');
  assert.equal(queue.take('new.ipynb'), null, 'p1 is still on screen, now under the new name');
  queue.done(shown);
  assert.equal(queue.take('new.ipynb').prompt_id, 'p2');
});

test("questions about a closed notebook are offered at once, each arrival once", () => {
  const queue = new log.PromptQueue();
  const open = new Set(['open.ipynb']);
  const isOpen = path => open.has(path);
  queue.add([prompt('p1', 'closed.ipynb'), prompt('p2', 'closed.ipynb'), prompt('p3', 'open.ipynb')]);
  assert.deepEqual(queue.closedToOffer(isOpen), ['closed.ipynb'], 'an open notebook asks beside its cells');
  assert.equal(queue.waitingFor('closed.ipynb'), 2);
  assert.deepEqual(queue.closedToOffer(isOpen), [], 'offered once, not at every answer');
  queue.add([prompt('p4', 'closed.ipynb')]);
  assert.deepEqual(queue.closedToOffer(isOpen), ['closed.ipynb'], 'new questions are offered again');
  const shown = queue.take('closed.ipynb');
  queue.add([prompt('p5', 'closed.ipynb')]);
  assert.deepEqual(queue.closedToOffer(isOpen), [], 'not while one is being answered');
  queue.done(shown);
  assert.ok(queue.has('closed.ipynb'));
  for (let next = queue.take('closed.ipynb'); next; next = queue.take('closed.ipynb')) {
    queue.done(next);
  }
  assert.equal(queue.waitingFor('closed.ipynb'), 0);
});

test('a question on screen is something left to ask', () => {
  const queue = new log.PromptQueue();
  queue.add([prompt('p1', 'a.ipynb')]);
  const shown = queue.take('a.ipynb');
  assert.ok(queue.has('a.ipynb'));
  queue.done(shown);
  assert.ok(!queue.has('a.ipynb'));
});

test('the offer names the closed notebook and how many questions', () => {
  assert.match(log.closedOffer('lab/story.ipynb', 1), /^You closed story\.ipynb: a question about/);
  assert.match(log.closedOffer('story.ipynb', 3), /: 3 questions about what you were trying to do/);
});
