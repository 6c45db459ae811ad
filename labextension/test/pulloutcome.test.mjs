// "Pull from Repository…": every outcome said plainly (src/pulloutcome.ts).
// Run: python labextension/build.py --test
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { keptReport, overwriteQuestion, pullFailure, pullReport } = require('./build/pulloutcome.js');

const answer = (fields) => ({
  path: 'analysis/x.ipynb', written: true, entry: { path: 'x.ipynb' }, version: { number: 3 }, ...fields
});

test('pulled into the file asked for', () => {
  assert.equal(pullReport(answer(), 'analysis/x.ipynb', 'fail'), 'Pulled version 3 of x.ipynb into analysis/x.ipynb.');
});

test('already up to date: nothing written', () => {
  assert.equal(
    pullReport(answer({ written: false }), 'analysis/x.ipynb', 'fail'),
    'Already up to date: analysis/x.ipynb holds version 3 of x.ipynb.'
  );
});

test('written beside the file the user kept', () => {
  assert.equal(
    pullReport(answer({ path: 'analysis/x (2).ipynb' }), 'analysis/x.ipynb', 'beside'),
    'Pulled version 3 of x.ipynb into analysis/x (2).ipynb, beside your analysis/x.ipynb, which is unchanged.'
  );
});

test('overwritten when the user said so', () => {
  assert.equal(
    pullReport(answer(), 'analysis/x.ipynb', 'overwrite'),
    'Pulled version 3 of x.ipynb into analysis/x.ipynb, replacing your copy.'
  );
});

test('kept: nothing pulled', () => {
  assert.equal(keptReport('x.ipynb'), 'Nothing was pulled: you kept your x.ipynb as it was.');
});

test('failures say that nothing was pulled, and why', () => {
  assert.equal(pullFailure(null, 'Failed to fetch'), 'Nothing was pulled: the hub could not be reached (Failed to fetch).');
  assert.match(pullFailure(403, 'Forbidden'), /^Nothing was pulled: the hub refused \(Forbidden\)\. Log in/);
  assert.equal(
    pullFailure(404, "no entry 'gone.ipynb'."),
    "Nothing was pulled: no entry 'gone.ipynb'. Search again: it may have been moved or deleted."
  );
  assert.equal(
    pullFailure(400, 'a notebook is pulled to a .ipynb path, and only a notebook is'),
    'Nothing was pulled: a notebook is pulled to a .ipynb path, and only a notebook is.'
  );
});

test('overwriting a file open with unsaved edits says they go too', () => {
  assert.doesNotMatch(overwriteQuestion(false), /unsaved/);
  assert.match(overwriteQuestion(true), /unsaved changes in its open tab: overwriting discards them too/);
});
