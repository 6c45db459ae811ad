// The extension's citation parser against the cases the hub's parser is tested with
// (tests/bibliography/citation_cases.json), so the two cannot drift apart.
// Run: python labextension/build.py --test  (compiles src/citations.ts to test/build first)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { citedKeys, findCitations } = require('./build/citations.js');

const casesFile = new URL('../../tests/bibliography/citation_cases.json', import.meta.url);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
const known = new Set(cases.known);

function keys(text) {
  return findCitations(text, known).flatMap(citation =>
    citation.keys.map(cited => ({
      key: cited.key,
      prefix: cited.prefix,
      locator: cited.locator,
      suppress_author: cited.suppressAuthor
    }))
  );
}

test('the shared cases are there', () => {
  assert.ok(cases.citations.length > 10 && cases.not_citations.length > 5);
});

for (const { text, cited } of cases.citations) {
  test(`citation: ${text}`, () => assert.deepEqual(keys(text), cited));
}

for (const { text } of cases.not_citations) {
  test(`not a citation: ${text}`, () => assert.deepEqual(keys(text), []));
}

for (const { text, keys: expected } of cases.cited_keys_in_order) {
  test(`keys in order: ${text}`, () => assert.deepEqual(citedKeys(text), expected));
}
