// REPL harness of the Warren code interpreter's JavaScript contexts.
//
// One Node.js process per context. Requests arrive as JSON lines {id, code, env} on the
// file descriptor WARREN_CI_REQ_FD; events go out as JSON lines on WARREN_CI_EV_FD:
// {type: "ready"} once, then per request any number of {id, type: "stdout"|"stderr", text},
// at most one {id, type: "result", text} or {id, type: "error", name, value, traceback},
// and {id, type: "done"} last. User code runs in a vm context that persists between
// requests, so top-level let/const/function declarations stay defined.
'use strict';

const fs = require('fs');
const path = require('path');
const net = require('net');
const readline = require('readline');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const REQ_FD = Number(process.env.WARREN_CI_REQ_FD);
const EV_FD = Number(process.env.WARREN_CI_EV_FD);
delete process.env.WARREN_CI_REQ_FD;
delete process.env.WARREN_CI_EV_FD;

let current = 0; // id of the request being run; output is attributed to it

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

function emit(ev) {
  if ((ev.type === 'stdout' || ev.type === 'stderr') && ev.text === '') return;
  ev.id = current;
  writeAll(EV_FD, Buffer.from(JSON.stringify(ev) + '\n'));
}

// Everything written to process.stdout/stderr (console.log included) becomes output
// events, in order with results and errors.
for (const name of ['stdout', 'stderr']) {
  const stream = process[name];
  stream.write = function write(chunk, encoding, cb) {
    const text = typeof chunk === 'string' ? chunk
      : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
    emit({ type: name, text });
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
}

// The context's global object gets Node's globals (process, Buffer, timers, fetch, URL,
// ...) that a fresh vm context lacks, plus require() resolving from the working directory.
const sandbox = vm.createContext({});
const ctxGlobal = vm.runInContext('globalThis', sandbox);
for (const key of Object.getOwnPropertyNames(globalThis)) {
  if (key in ctxGlobal) continue;
  try {
    ctxGlobal[key] = globalThis[key];
  } catch (e) {
    // A global that cannot be copied is simply not available.
  }
}
ctxGlobal.global = ctxGlobal;
ctxGlobal.console = console;
ctxGlobal.require = createRequire(path.join(process.cwd(), '[repl]'));
ctxGlobal.module = { exports: {} };
ctxGlobal.exports = ctxGlobal.module.exports;
ctxGlobal.__dirname = process.cwd();
ctxGlobal.__filename = path.join(process.cwd(), '[repl]');

// SIGINT: during synchronous code vm's breakOnSigint throws; while awaiting a promise
// this rejects the wait. Without a listener Node would exit.
let abortWait = null;
process.on('SIGINT', () => {
  if (abortWait) abortWait(new Error('Execution interrupted by SIGINT'));
});
// Errors of callbacks that outlive their cell must not kill the context.
process.on('uncaughtException', (e) => emit({ type: 'stderr', text: describe(e).traceback + '\n' }));
process.on('unhandledRejection', (e) => emit({ type: 'stderr', text: 'Unhandled promise rejection: ' + describe(e).traceback + '\n' }));

function describe(e) {
  if (e !== null && typeof e === 'object' && 'message' in e) {
    const name = e.name || (e.constructor && e.constructor.name) || 'Error';
    return { name: String(name), value: String(e.message), traceback: cleanStack(e.stack || name + ': ' + e.message) };
  }
  return { name: 'Error', value: String(e), traceback: 'Uncaught ' + util.inspect(e) };
}

// cleanStack drops the frames of this harness (and of vm) from a stack trace.
function cleanStack(stack) {
  const lines = String(stack).split('\n');
  const i = lines.findIndex((l) => /^\s+at /.test(l) &&
    (l.includes('node:vm') || l.includes(__filename) || l.includes('sigintHandlersWrap')));
  return (i > 0 ? lines.slice(0, i) : lines).join('\n');
}

let cellNo = 0;

function compile(source) {
  return new vm.Script(source, { filename: `<cell ${cellNo}>` });
}

// Code with a top-level await does not compile as a script. It is wrapped in an async
// function; simple top-level declarations are turned into global assignments so that they
// persist, and a last line that is an expression becomes the return value.
function asyncScript(code) {
  const lines = code.split('\n').map((l) => l
    .replace(/^(?:let|const|var)\s+([A-Za-z_$][\w$]*)\s*=/, '$1 =')
    .replace(/^((?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*))/, '$2 = $1')
    .replace(/^class\s+([A-Za-z_$][\w$]*)/, '$1 = class $1'));
  let last = lines.length - 1;
  while (last >= 0 && lines[last].trim() === '') last--;
  if (last >= 0 && !/^\s*(return|throw|if|for|while|do|switch|try|}|\/\/)/.test(lines[last])) {
    const withReturn = lines.slice();
    withReturn[last] = 'return (' + lines[last].replace(/;\s*$/, '') + ');';
    try {
      return compile('(async () => {\n' + withReturn.join('\n') + '\n})()');
    } catch (e) {
      // not an expression: fall through
    }
  }
  return compile('(async () => {\n' + lines.join('\n') + '\n})()');
}

function interruptible(promise) {
  return new Promise((resolve, reject) => {
    abortWait = reject;
    Promise.resolve(promise).then(resolve, reject);
  }).finally(() => { abortWait = null; });
}

function setEnv(env) {
  const saved = {};
  for (const [k, v] of Object.entries(env || {})) {
    saved[k] = Object.prototype.hasOwnProperty.call(process.env, k) ? process.env[k] : undefined;
    process.env[k] = v;
  }
  return saved;
}

function restoreEnv(saved) {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

async function run(req) {
  current = req.id;
  cellNo++;
  const saved = setEnv(req.env);
  try {
    let script;
    try {
      script = compile(req.code);
    } catch (e) {
      if (!(e && e.name === 'SyntaxError' && /\bawait\b/.test(req.code))) throw e;
      script = asyncScript(req.code);
    }
    let value = script.runInContext(sandbox, { breakOnSigint: true, displayErrors: false });
    if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') {
      value = await interruptible(value);
    }
    if (value !== undefined) {
      emit({ type: 'result', text: util.inspect(value, { depth: 4, colors: false }) });
    }
  } catch (e) {
    emit(Object.assign({ type: 'error' }, describe(e)));
  } finally {
    restoreEnv(saved);
    emit({ type: 'done' });
  }
}

// Requests are run one after another. The request pipe is read as a socket (epoll), not
// as a file stream: a blocking read in libuv's thread pool would keep process.exit() in
// user code from ever completing.
let queue = Promise.resolve();
const input = new net.Socket({ fd: REQ_FD, readable: true, writable: false });
const rl = readline.createInterface({ input, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return;
  }
  queue = queue.then(() => run(req));
});
rl.on('close', () => process.exit(0));
emit({ type: 'ready' });
