// "Run with Parameters…": how the form's texts become parameter values, and a run's state
// in words (src/runmodel.ts). Run: python labextension/build.py --test
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const model = require('./build/runmodel.js');

test('values are read as JSON, like MPPW', () => {
  assert.deepEqual(model.parseParameterValue('[1, 2, 3]'), [1, 2, 3]);
  assert.deepEqual(model.parseParameterValue('{"key": "value"}'), { key: 'value' });
  assert.equal(model.parseParameterValue('21'), 21);
  assert.equal(model.parseParameterValue('-1.5e3'), -1500);
  assert.equal(model.parseParameterValue('true'), true);
  assert.equal(model.parseParameterValue('null'), null);
  assert.equal(model.parseParameterValue('"42"'), '42');
});

test('text that is not JSON is taken as it is', () => {
  assert.equal(model.parseParameterValue('alice'), 'alice');
  assert.equal(model.parseParameterValue('Experiment 12'), 'Experiment 12');
  assert.equal(model.parseParameterValue('[1, 2'), '[1, 2');
  assert.equal(model.parseParameterValue("{'python': 'dict'}"), "{'python': 'dict'}");
});

test('an empty field keeps the notebook default; the others are sent, trimmed', () => {
  assert.deepEqual(model.parametersFromFields({ x: ' 21 ', name: 'alice', keep: '', blank: '   ' }), {
    x: 21,
    name: 'alice'
  });
});

test('Python literal defaults are shown as JSON', () => {
  const cases = {
    '1': '1',
    '-2.5': '-2.5',
    "'nobody'": '"nobody"',
    '"it\'s"': '"it\'s"',
    "'a\\'b\\n'": '"a\'b\\n"',
    'True': 'true',
    'None': 'null',
    "[1, 'a', None, True]": '[1,"a",null,true]',
    "{'k': 1.5, 'l': [False],}": '{"k":1.5,"l":[false]}'
  };
  for (const [python, json] of Object.entries(cases)) {
    assert.equal(model.pythonDefaultAsJson(python), json, python);
  }
});

test('defaults that are not plain literals are left to the notebook', () => {
  for (const python of ['math.pi', '(1, 2)', 'f(1)', "'open", 'datetime.now()', '1 +', '']) {
    assert.equal(model.pythonDefaultAsJson(python), null, python);
  }
  const parameter = { name: 'f', inferred_type_name: 'None', default: 'math.pi', help: '' };
  assert.equal(model.initialFieldText(parameter), '');
});

test('a default shown in the form reads back as the same value', () => {
  for (const python of ["'nobody'", '3', "[1, 'x']", "{'a': None}"]) {
    const shown = model.initialFieldText({ name: 'p', inferred_type_name: 'None', default: python, help: '' });
    assert.deepEqual(model.parametersFromFields({ p: shown }).p, JSON.parse(shown));
  }
});

test('how a field is read, in words', () => {
  assert.equal(model.describeValue('3'), 'a number');
  assert.equal(model.describeValue('alice'), 'text');
  assert.equal(model.describeValue('[1, 2]'), 'a list of 2');
  assert.equal(model.describeValue('{"a": 1}'), 'a dictionary');
  assert.equal(model.describeValue('false'), 'False');
  assert.equal(model.describeValue('null'), 'None');
});

test("the run's scope follows MPPW's parameter names", () => {
  assert.equal(model.scopeOf(['OPERATION_ID', 'x']), 'operation');
  assert.equal(model.scopeOf(['ARTIFACT_ID']), 'artifact');
  assert.equal(model.scopeOf(['x']), 'project');
});

const run = (fields) => ({
  id: 7, notebook: 'a.ipynb', status: 'running', cells_done: 0, cells_total: 0,
  current_cell: null, error: null, ...fields
});

test('progress in words, for every status', () => {
  assert.equal(model.runProgressText(run({ status: 'queued', queue_position: 2 })), 'Queued: position 2 in the queue');
  assert.equal(model.runProgressText(run({ status: 'queued' })), 'Queued');
  assert.equal(model.runProgressText(run({})), 'Starting');
  const pending = 'Your job 7 waits in the Slurm queue: waiting for resources (Resources)';
  assert.equal(model.runProgressText(run({ waiting: pending })), pending);
  assert.equal(model.runProgressText(run({ status: 'queued', waiting: pending })), pending);
  assert.equal(model.runProgressText(run({ status: 'completed', waiting: pending })), 'Completed: 0 of 0 cells');
  assert.equal(
    model.runProgressText(run({ cells_done: 2, cells_total: 5, current_cell: 2 })),
    'Running cell 3: 2 of 5 cells done'
  );
  assert.equal(model.runProgressText(run({ status: 'completed', cells_done: 5, cells_total: 5 })), 'Completed: 5 of 5 cells');
  assert.equal(model.runProgressText(run({ status: 'cancelled', cells_done: 1, cells_total: 5 })), 'Cancelled after 1 of 5 cells');
  const error = { cell: 1, ename: 'ValueError', evalue: 'bad x', traceback: '' };
  assert.equal(model.runProgressText(run({ status: 'failed', error })), 'Failed in cell 2: ValueError: bad x');
  const lost = { cell: null, ename: 'RunError', evalue: 'worker gone', traceback: null };
  assert.equal(model.runProgressText(run({ status: 'failed', error: lost })), 'Failed: RunError: worker gone');
  assert.ok(model.isActive({ status: 'queued' }) && !model.isActive({ status: 'failed' }));
});

test("a failed cell's traceback loses its terminal colours", () => {
  assert.equal(model.plainTraceback('\u001b[0;31mValueError\u001b[0m: bad x'), 'ValueError: bad x');
});

const runKernels = (fields = {}) => ({
  kernels: [{ name: 'python3', display_name: 'Python 3' }, { name: 'ir', display_name: 'R' }],
  default: 'python3',
  any_kernel: false,
  ...fields
});
const serverKernels = [{ name: 'python3', display_name: 'Python 3' }, { name: 'julia', display_name: 'Julia' }];

test("the form offers the runs' kernels, not the user server's", () => {
  const options = model.kernelOptions(runKernels(), serverKernels, 'ir');
  assert.deepEqual(options.kernels.map(choice => choice.name), ['python3', 'ir']);
  assert.deepEqual(options.kernels[1], { name: 'ir', label: 'R (ir)' });
  assert.equal(options.kernel, 'ir');
  assert.equal(options.note, '');
});

test("a notebook's kernel the runs do not have: the default is chosen, and it is said", () => {
  const options = model.kernelOptions(runKernels(), serverKernels, 'julia');
  assert.deepEqual(options.kernels.map(choice => choice.name), ['python3', 'ir']);
  assert.equal(options.kernel, 'python3');
  assert.match(options.note, /names the kernel “julia”, which runs on the hub do not have/);
  assert.equal(model.kernelOptions(runKernels(), [], null).note, '');
  assert.equal(model.kernelOptions(runKernels({ default: 'gone' }), [], null).kernel, 'python3');
});

test('where runs take any kernel, the user\'s own and the notebook\'s are offered too', () => {
  const options = model.kernelOptions(runKernels({ any_kernel: true }), serverKernels, 'mykernel');
  assert.deepEqual(options.kernels.map(choice => choice.name), ['mykernel', 'python3', 'ir', 'julia']);
  assert.equal(options.kernel, 'mykernel');
  assert.equal(options.note, '');
});

test('no kernel for runs at all is said', () => {
  const options = model.kernelOptions(runKernels({ kernels: [] }), serverKernels, 'python3');
  assert.deepEqual(options.kernels, []);
  assert.match(options.note, /no kernel/);
});
