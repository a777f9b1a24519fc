/** The core's pure parts, without a daemon. */
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { CancellationTokenSource, ConnectionError, ConnectionErrors, ResponseError } from 'vscode-jsonrpc/node';
import { ChatClient } from '../src/core/chatClient';
import { CommandOutput } from '../src/core/commandOutput';
import { lastTurnMetadata } from '../src/core/chatSession';
import { toDaemonFailure } from '../src/core/daemonFailure';
import { explainFailure } from '../src/core/explainFailure';
import { asPlainText } from '../src/core/explanation';
import { formatBytes, sameModel } from '../src/core/modelDescriptions';
import type { RpcConnection } from '../src/core/rpcConnection';
import { PickerChoice } from '../src/core/pickerChoice';
import { sendRequest } from '../src/core/rpcConnection';
import { findExecutable, parseCommandLine, resolveServerCommand } from '../src/core/serverCommand';
import { ServerManager } from '../src/core/serverManager';
import { DEFAULT_SETTINGS, initializationOptionsFrom } from '../src/core/settings';
import { resolveToolPath, toolPathOf } from '../src/core/workspacePaths';
import { RecordingListener } from './support/recordingListener';
import { makeTempDir } from './support/tempDirs';

/** A connection that records what is sent and lets the test play the daemon. */
class FakeConnection implements RpcConnection {
  readonly sent: { method: string; args: unknown[] }[] = [];
  readonly notificationHandlers = new Map<string, (params: any) => void>();
  registrations = 0;
  answer: (method: string, params: any) => Promise<unknown> = async () => ({});

  sendRequest<R>(method: string, ...args: unknown[]): Promise<R> {
    this.sent.push({ method, args });
    return this.answer(method, args[0]) as Promise<R>;
  }
  onNotification(method: string, handler: (params: any) => void) {
    this.registrations++;
    this.notificationHandlers.set(method, handler);
    return { dispose: () => this.notificationHandlers.delete(method) };
  }
  onRequest() {
    this.registrations++;
    return { dispose: () => undefined };
  }
  notify(method: string, params: unknown): void {
    this.notificationHandlers.get(method)?.(params);
  }
}

describe('the core never imports vscode', () => {
  test('no compiled core module requires "vscode"', () => {
    const dir = path.join(__dirname, '..', 'src', 'core');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
      assert.doesNotMatch(readFileSync(path.join(dir, file), 'utf8'), /require\("vscode"\)/, file);
    }
  });
});

describe('sending requests', () => {
  test('without a token, no token argument at all (an explicit undefined would send positional params)', async () => {
    const connection = new FakeConnection();
    await sendRequest(connection, 'chat/cancel', { chatId: 'c' });
    assert.deepEqual(connection.sent[0].args, [{ chatId: 'c' }]);
    const token = new CancellationTokenSource().token;
    await sendRequest(connection, 'chat/cancel', { chatId: 'c' }, token);
    assert.deepEqual(connection.sent[1].args, [{ chatId: 'c' }, token]);
  });
});

describe('ChatClient routing', () => {
  test('registers each handler once, however many turns run', async () => {
    const connection = new FakeConnection();
    const chat = new ChatClient(connection, async () => 'deny');
    const registered = connection.registrations;
    await chat.runTurn({ chatId: 'a', prompt: 'x' }, {});
    await chat.runTurn({ chatId: 'b', prompt: 'y' }, {});
    assert.equal(connection.registrations, registered);
    assert.equal(registered, 5, 'chat/token, chat/toolCall, chat/status, model/token, chat/requestPermission');
  });

  test('tokens of unknown or finished chats are dropped; a throwing listener does not break routing', async () => {
    const connection = new FakeConnection();
    const chat = new ChatClient(connection, async () => 'deny');
    const listener = new RecordingListener();
    let calls = 0;
    listener.onContent = () => {
      calls++;
      throw new Error('renderer bug');
    };
    connection.answer = async () => {
      connection.notify('chat/token', { chatId: 'other', kind: 'content', text: 'not mine', seq: 0 });
      connection.notify('chat/token', { chatId: 'mine', kind: 'content', text: 'one', seq: 0 });
      connection.notify('chat/token', { chatId: 'mine', kind: 'content', text: 'two', seq: 1 });
      return { chatId: 'mine', stopReason: 'end_turn', message: { role: 'assistant', content: 'onetwo' } };
    };
    const original = console.error;
    console.error = () => undefined;
    try {
      await chat.runTurn({ chatId: 'mine', prompt: 'x' }, listener);
    } finally {
      console.error = original;
    }
    assert.equal(listener.text, 'onetwo');
    assert.equal(calls, 2);
    connection.notify('chat/token', { chatId: 'mine', kind: 'content', text: 'late', seq: 2 });
    assert.equal(listener.text, 'onetwo');
  });

  test('a -32800 answer is a cancellation, not an error', async () => {
    const connection = new FakeConnection();
    connection.answer = async () => {
      throw new ResponseError(-32800, 'Request cancelled.');
    };
    const chat = new ChatClient(connection, async () => 'deny');
    assert.deepEqual(await chat.runTurn({ chatId: 'c', prompt: 'x' }, {}), { kind: 'cancelled' });
  });
});

describe('daemon failures', () => {
  test('keep the daemon\'s code, kind, message and data; never a stack', () => {
    const failure = toDaemonFailure(new ResponseError(-32002, 'Model "x" is not available.', { kind: 'model_not_found', model: 'x' }));
    assert.deepEqual(failure, { code: -32002, kind: 'model_not_found', message: 'Model "x" is not available.', data: { kind: 'model_not_found', model: 'x' } });
  });

  test('a kind is derived from the code when data is absent', () => {
    assert.equal(toDaemonFailure(new ResponseError(-32001, 'down')).kind, 'ollama_unreachable');
    assert.equal(toDaemonFailure(new ResponseError(-32096, 'Client is not running')).kind, 'server_not_running');
  });

  test('a closed connection means the daemon is not running', () => {
    assert.equal(toDaemonFailure(new ConnectionError(ConnectionErrors.Closed, 'Connection is closed.')).kind, 'server_not_running');
    assert.deepEqual(toDaemonFailure(new TypeError('boom')), { kind: 'client_error', message: 'boom', data: {} });
  });

  test('a bad setting names the ollamaChat setting to fix', () => {
    const explanation = explainFailure({ code: -32602, kind: 'invalid_params', message: 'maxToolRounds must be >= 1', data: { field: 'initializationOptions.autoApprove' } });
    assert.match(explanation.markdown, /\*\*ollamaChat\.autoApprove\*\* is not valid/);
    assert.deepEqual(explanation.actions[0].arguments, ['ollamaChat.autoApprove']);
  });

  test('an old daemon without a method: update it', () => {
    const explanation = explainFailure({ code: -32601, kind: 'method_not_found', message: 'Method not found: chat/models.', data: {} });
    assert.match(explanation.markdown, /too old.*pipx upgrade ollama-chatd/);
  });

  test('a model an OpenAI-compatible server does not serve: choose one it serves, no `ollama pull`', () => {
    const failure = { code: -32002, kind: 'model_not_found', message: 'Model x is not served.', data: { model: 'x', backend: 'openai' } };
    const explanation = explainFailure(failure);
    assert.match(explanation.markdown, /OpenAI-compatible server does not serve the model `x`/);
    assert.doesNotMatch(explanation.markdown, /ollama pull/);
    assert.deepEqual(explanation.actions.map((a) => a.title), ['Select Model']);
  });

  test('an unknown kind is shown by its message', () => {
    assert.match(explainFailure({ code: -32099, kind: 'quota', message: 'Out of quota.', data: {} }).markdown, /Out of quota\./);
  });

  test('notifications get plain text', () => {
    assert.equal(asPlainText('Run **Ollama: Select Model** or `ollama pull x`.'), 'Run Ollama: Select Model or "ollama pull x".');
  });
});

describe('settings to initializationOptions', () => {
  test('empty values are left to the daemon\'s defaults', () => {
    assert.deepEqual(initializationOptionsFrom(DEFAULT_SETTINGS), { autoApprove: [] });
    assert.deepEqual(
      initializationOptionsFrom({ serverCommand: 'x', ollamaHost: ' gpu:11434 ', model: 'qwen3:8b', autoApprove: ['edit_file'], mcpServers: {} }),
      { autoApprove: ['edit_file'], ollamaHost: 'gpu:11434', model: 'qwen3:8b' },
    );
  });

  test('MCP servers are passed as the user wrote them (the daemon checks them)', () => {
    const mcpServers = { time: { command: 'uvx', args: ['mcp-server-time'] }, tracker: { url: 'https://t/mcp' } };
    assert.deepEqual(initializationOptionsFrom({ ...DEFAULT_SETTINGS, mcpServers }), { autoApprove: [], mcpServers });
  });
});

describe('finding the daemon', () => {
  const bin = makeTempDir('ollama-chat-bin-');
  const program = path.join(bin, 'ollama-chatd');
  writeFileSync(program, '#!/bin/sh\n');
  chmodSync(program, 0o755);
  writeFileSync(path.join(bin, 'not-executable'), '');

  test('command lines split like a shell, quotes included', () => {
    assert.deepEqual(parseCommandLine('"/opt/my venv/bin/python" -m ollama_chatd'), ['/opt/my venv/bin/python', '-m', 'ollama_chatd']);
    assert.deepEqual(parseCommandLine("  ollama-chatd  --log 'a b' "), ['ollama-chatd', '--log', 'a b']);
    assert.deepEqual(parseCommandLine(''), []);
  });

  test('on PATH by default, serve appended', () => {
    const env = { PATH: `/nonexistent:${bin}`, platform: 'linux' as const };
    assert.deepEqual(resolveServerCommand('', env), { kind: 'found', command: program, args: ['serve'] });
    assert.deepEqual(resolveServerCommand(`${program} --verbose`, env), { kind: 'found', command: program, args: ['--verbose', 'serve'] });
    assert.equal(findExecutable(path.join(bin, 'not-executable'), env), undefined);
  });

  test('missing: the explanation suggests pipx when pipx is there', () => {
    writeFileSync(path.join(bin, 'pipx'), '#!/bin/sh\n');
    chmodSync(path.join(bin, 'pipx'), 0o755);
    const missing = resolveServerCommand('', { PATH: '/nonexistent', platform: 'linux' });
    assert.equal(missing.kind === 'missing' && missing.explanation.actions[0].arguments?.[0], 'pip install ollama-chatd');
    const withPipx = resolveServerCommand('nope-chatd', { PATH: bin, platform: 'linux' });
    assert.equal(withPipx.kind === 'missing' && withPipx.explanation.actions[0].arguments?.[0], 'pipx install ollama-chatd');
  });
});

describe('small helpers', () => {
  test('tool paths map to files of the workspace folders', () => {
    const one = [{ name: 'project', fsPath: '/w/project' }];
    assert.equal(resolveToolPath('src/app.py', one), '/w/project/src/app.py');
    assert.equal(resolveToolPath('../etc/passwd', one), undefined);
    assert.equal(resolveToolPath('/etc/passwd', one), undefined);
    const two = [...one, { name: 'docs', fsPath: '/w/docs' }];
    assert.equal(resolveToolPath('docs/index.md', two), '/w/docs/index.md');
    assert.equal(resolveToolPath('other/x', two), undefined);
    assert.equal(toolPathOf('/w/project/src/app.py', one), 'src/app.py');
    assert.equal(toolPathOf('/w/docs/index.md', two), 'docs/index.md');
    assert.equal(toolPathOf('/elsewhere/x', two), undefined);
  });

  test('the chat id comes back from the latest answer in the history', () => {
    assert.equal(lastTurnMetadata([]), undefined);
    const history = [
      { prompt: 'a' },
      { result: { metadata: { chatId: 'vscode-1', serverSession: 's1' } } },
      { prompt: 'b' },
      { result: {} }, // an answer from an older extension version, without metadata
    ];
    assert.deepEqual(lastTurnMetadata(history), { chatId: 'vscode-1', serverSession: 's1' });
  });

  test('model names and sizes', () => {
    assert.ok(sameModel('llama3.2', 'llama3.2:latest'));
    assert.ok(!sameModel('llama3.2', 'llama3.2:1b'));
    assert.ok(!sameModel('', ''));
    assert.equal(formatBytes(807_694_464), '808 MB');
    assert.equal(formatBytes(5_225_388_164), '5.2 GB');
  });
});

describe('ServerManager', () => {
  const env = () => ({ PATH: path.dirname(process.execPath), platform: process.platform });
  const settings = () => ({ ...DEFAULT_SETTINGS, serverCommand: process.execPath });

  function manager(launch: ConstructorParameters<typeof ServerManager>[0]['launch']) {
    const events: string[] = [];
    const m = new ServerManager({
      launch,
      settings,
      environment: env,
      askPermission: async () => 'deny',
      log: () => undefined,
      onUnavailable: () => events.push('unavailable'),
      onExited: () => events.push('exited'),
    });
    return { m, events };
  }

  test('concurrent first uses share one start; a dead daemon is started again on the next use', async () => {
    let launches = 0;
    let exit: () => void = () => undefined;
    const { m, events } = manager(async (command, _options, onExit) => {
      launches++;
      exit = onExit;
      assert.deepEqual(command, { command: process.execPath, args: ['serve'] });
      return { connection: new FakeConnection(), stop: async () => undefined };
    });
    const [a, b] = await Promise.all([m.acquire(), m.acquire()]);
    assert.equal(launches, 1);
    assert.equal(b, a, 'both callers got the same daemon');
    assert.equal(a.kind, 'ready');
    exit();
    assert.deepEqual(events, ['exited']);
    const c = await m.acquire();
    assert.equal(launches, 2);
    assert.notEqual(c.kind === 'ready' && c.serverSession, a.kind === 'ready' && a.serverSession);
  });

  test('a failed start is explained, and tried again on the next use', async () => {
    let fail = true;
    const { m, events } = manager(async () => {
      if (fail) throw new ResponseError(-32602, 'bad', { kind: 'invalid_params', field: 'initializationOptions.ollamaHost' });
      return { connection: new FakeConnection(), stop: async () => undefined };
    });
    const first = await m.acquire();
    assert.equal(first.kind, 'unavailable');
    assert.match(first.kind === 'unavailable' ? first.explanation.markdown : '', /ollamaChat\.ollamaHost/);
    assert.deepEqual(events, ['unavailable']);
    fail = false;
    assert.equal((await m.acquire()).kind, 'ready');
  });

  test('stop waits for the daemon to go; restart starts a new one', async () => {
    const stopped: number[] = [];
    let n = 0;
    const { m } = manager(async () => {
      const id = ++n;
      return { connection: new FakeConnection(), stop: async () => void stopped.push(id) };
    });
    await m.acquire();
    await m.restart();
    assert.deepEqual(stopped, [1]);
    await m.stop();
    assert.deepEqual(stopped, [1, 2]);
    assert.equal(m.isRunning, false);
  });

  test('after dispose (the window closes) nothing starts a daemon again', async () => {
    let launches = 0;
    const { m } = manager(async () => {
      launches++;
      return { connection: new FakeConnection(), stop: async () => undefined };
    });
    await m.acquire();
    await m.dispose();
    assert.equal((await m.acquire()).kind, 'unavailable');
    assert.equal(launches, 1);
  });
});

describe('the model @ollama uses: the picker\'s or the setting, whichever was chosen last', () => {
  test('a new pick in VS Code\'s chat wins and is adopted as the setting; Select Model wins afterwards', () => {
    const choice = new PickerChoice();
    assert.deepEqual(choice.decide(undefined, 'tiny'), { model: 'tiny', adoptPicker: false }, 'another vendor\'s model: the setting');
    assert.deepEqual(choice.decide('thinker', 'tiny'), { model: 'tiny', adoptPicker: false }, 'VS Code\'s default pick is not a choice');
    assert.deepEqual(choice.decide('plain', 'tiny'), { model: 'plain', adoptPicker: true }, 'picked in the chat');
    assert.deepEqual(choice.decide('plain', 'thinker'), { model: 'thinker', adoptPicker: false }, 'then Select Model');
    assert.deepEqual(choice.decide('plain', ''), { model: 'plain', adoptPicker: true }, 'no setting at all');
  });
});

describe("a command's output while it runs", () => {
  const FENCE = '``````';
  const running = (output: string, outputLength: number, callId = 'c1') =>
    ({ chatId: 'chat', callId, name: 'run_command', arguments: { command: 'make' }, status: 'running' as const, output, outputLength });
  const ended = (status: 'completed' | 'failed' | 'cancelled', callId = 'c1') =>
    ({ chatId: 'chat', callId, name: 'run_command', arguments: { command: 'make' }, status });

  test('grows one code block with only the new characters, closed when the call ends', () => {
    const view = new CommandOutput();
    assert.equal(view.update(running('one\n', 4)), `\n\n${FENCE}text\n$ make\none\n`);
    assert.equal(view.update(running('one\ntwo', 7)), 'two');
    assert.equal(view.update(running('one\ntwo', 7)), '', 'a repeat adds nothing');
    assert.equal(view.update(ended('completed')), `\n${FENCE}\n\n`, 'a line left open is ended before the fence');
    assert.equal(view.close(), '', 'closed once');
  });

  test('says how much it could not show when more came than one update carries', () => {
    const view = new CommandOutput();
    view.update(running('start\n', 6));
    assert.equal(view.update(running('...tail\n', 5006)), '[... 4992 characters not shown ...]\n...tail\n');
  });

  test('keeps the block whole whatever the output holds', () => {
    const view = new CommandOutput();
    const shown = view.update(running('a\r\nb\rc `````````\n', 18));
    assert.ok(shown.endsWith('a\nb\nc ' + '`'.repeat(9).split('').join('\u200b') + '\n'), JSON.stringify(shown));
    assert.ok(!shown.slice(FENCE.length + 4).includes(FENCE), 'no fence inside the output');
  });

  test('leaves other tools and calls that showed nothing alone, and a new call gets its own block', () => {
    const view = new CommandOutput();
    assert.equal(view.update({ ...running('x', 1), name: 'read_file' }), '');
    assert.equal(view.update(ended('failed')), '');
    view.update(running('first\n', 6, 'c1'));
    assert.equal(view.update(running('second\n', 7, 'c2')), `${FENCE}\n\n\n\n${FENCE}text\n$ make\nsecond\n`);
    assert.equal(view.update(ended('cancelled', 'c1')), '', "c1's block was already closed");
    assert.equal(view.close(), `${FENCE}\n\n`);
  });
});
