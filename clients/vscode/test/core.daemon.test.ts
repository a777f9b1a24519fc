/**
 * The core (no `vscode` import) against the real `ollama-chatd serve` process and the
 * repository's fake Ollama server.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { ChatClient, type TurnOutcome } from '../src/core/chatClient';
import { explainFailure } from '../src/core/explainFailure';
import type { PermissionPrompt } from '../src/core/permissionBroker';
import type { PermissionDecision, PermissionRequestParams } from '../src/core/protocol';
import { initializationOptionsFrom, DEFAULT_SETTINGS } from '../src/core/settings';
import { DaemonProcess } from './support/daemonProcess';
import { FakeOllama } from './support/fakeOllama';
import { eventually, isAlive, sleep } from './support/processes';
import { RecordingListener } from './support/recordingListener';

/** A permission prompt that answers as told and remembers what it was asked. */
function scriptedPrompt(...answers: PermissionDecision[]): PermissionPrompt & { asked: PermissionRequestParams[] } {
  const asked: PermissionRequestParams[] = [];
  const prompt = async (request: PermissionRequestParams) => {
    asked.push(request);
    return answers.shift() ?? 'deny';
  };
  return Object.assign(prompt, { asked });
}

let fake: FakeOllama;
before(async () => {
  fake = await FakeOllama.start();
});
after(async () => {
  await fake.stop();
});

/** One daemon for a group of tests, with a fresh client and prompt per test. */
function useDaemon(options: { model?: string } = { model: 'tiny' }) {
  const state = {} as { daemon: DaemonProcess; chat: ChatClient; prompt: ReturnType<typeof scriptedPrompt> };
  before(async () => {
    state.daemon = await DaemonProcess.start({
      initializationOptions: initializationOptionsFrom({ ...DEFAULT_SETTINGS, ollamaHost: fake.url, model: options.model ?? '' }),
    });
  });
  beforeEach(async () => {
    await fake.reset();
    state.chat?.dispose();
    state.prompt = scriptedPrompt();
    state.chat = new ChatClient(state.daemon.connection, (request, token) => state.prompt(request, token));
  });
  after(async () => {
    state.chat?.dispose();
    const daemon = state.daemon;
    await daemon.stop();
    assert.equal(isAlive(daemon.child), false, 'the daemon exits after shutdown/exit');
  });
  return state;
}

/** Asserts a turn finished, showing the daemon's error otherwise. */
function assertFinished(outcome: TurnOutcome): asserts outcome is Extract<TurnOutcome, { kind: 'finished' }> {
  if (outcome.kind !== 'finished') {
    assert.fail(`expected the turn to finish, got ${outcome.kind}: ${JSON.stringify(outcome.kind === 'failed' ? outcome.failure : '')}`);
  }
}

let chatCounter = 0;
const newChat = () => `test-chat-${++chatCounter}`;

describe('chatting with the real daemon', () => {
  const s = useDaemon();

  test('streams the answer token by token, in order, and ends with the result', async () => {
    await fake.script([{ kind: 'text', tokens: ['Hel', 'lo', ', ', 'world'] }]);
    const listener = new RecordingListener();
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'Hi' }, listener);
    assertFinished(outcome);
    assert.equal(listener.text, 'Hello, world');
    assert.equal(outcome.kind === 'finished' && outcome.result.message.content, 'Hello, world');
    assert.equal(outcome.kind === 'finished' && outcome.result.stopReason, 'end_turn');
  });

  test('routes thinking apart from the answer', async () => {
    await fake.script([{ kind: 'text', tokens: ['Blue.'], thinking: ['Rayleigh', ' scattering'] }]);
    const listener = new RecordingListener();
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'Why blue?', model: 'thinker', think: true }, listener);
    assertFinished(outcome);
    assert.equal(listener.thinking.join(''), 'Rayleigh scattering');
    assert.equal(listener.text, 'Blue.');
  });

  test('routes tokens of two concurrent chats to their own turns (one handler per method)', async () => {
    const [a, b] = [new RecordingListener(), new RecordingListener()];
    const [outA, outB] = await Promise.all([
      s.chat.runTurn({ chatId: newChat(), prompt: 'alpha alpha alpha' }, a),
      s.chat.runTurn({ chatId: newChat(), prompt: 'beta beta beta' }, b),
    ]);
    assertFinished(outA);
    assertFinished(outB);
    assert.equal(a.text, 'echo: alpha alpha alpha');
    assert.equal(b.text, 'echo: beta beta beta');
  });

  test('a follow-up turn continues the same daemon conversation', async () => {
    const chatId = newChat();
    await s.chat.runTurn({ chatId, prompt: 'first question' }, new RecordingListener());
    const second = new RecordingListener();
    await s.chat.runTurn({ chatId, prompt: 'second question' }, second);
    assert.equal(second.text, 'echo: second question');
    const [, request] = await fake.chatRequests();
    const history = request.body.messages.map((m: any) => [m.role, m.content]);
    assert.deepEqual(history, [
      ['user', 'first question'],
      ['assistant', 'echo: first question'],
      ['user', 'second question'],
    ]);
  });

  test('Stop mid-answer cancels the request, closes the stream to Ollama and keeps what was streamed', async () => {
    await fake.script([{ kind: 'endless', token: 'tok ', delay: 0.005 }]);
    const chatId = newChat();
    const stop = new CancellationTokenSource();
    const listener = new RecordingListener();
    listener.onContent = () => {
      if (listener.content.length === 3) stop.cancel();
    };
    const started = Date.now();
    const outcome = await s.chat.runTurn({ chatId, prompt: 'Tell me a long story' }, listener, stop.token);
    assert.equal(outcome.kind, 'cancelled');
    assert.ok(Date.now() - started < 5000, 'the turn stops promptly');
    assert.ok(listener.content.length >= 3);
    assert.equal(s.chat.isRunning(chatId), false);

    const [request] = await eventually(async () => {
      const records = await fake.chatRequests();
      return records[0]?.closed_at ? records : undefined;
    }, 3000, 'the fake to see the connection close');
    assert.equal(request.client_dropped, true, 'the daemon dropped the HTTP stream');

    // Nothing of the stopped turn arrives later, and the chat takes the next message.
    const seen = listener.content.length;
    await sleep(100);
    assert.equal(listener.content.length, seen);
    const next = new RecordingListener();
    const followUp = await s.chat.runTurn({ chatId, prompt: 'go on' }, next);
    assertFinished(followUp);
    const messages = (await fake.chatRequests())[1].body.messages;
    assert.equal(messages[1].role, 'assistant');
    assert.ok(messages[1].content.startsWith('tok tok tok'), 'the partial answer is in the history');
  });

  test('a permission round trip: the prompt sees the diff, Allow lets the edit arrive as workspace/applyEdit', async () => {
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'notes/a.txt', content: 'hi\n' } } }] },
      { kind: 'text', tokens: ['Created it.'] },
    ]);
    s.prompt = scriptedPrompt('allow');
    const listener = new RecordingListener();
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'create notes/a.txt' }, listener);

    assertFinished(outcome);
    assert.equal(listener.text, 'Created it.');
    const [asked] = s.prompt.asked;
    assert.equal(asked.name, 'write_file');
    assert.match(asked.title, /notes\/a\.txt/);
    assert.match(asked.diff, /^\+hi$/m);
    const callId = asked.callId;
    assert.deepEqual(listener.statusesOf(callId), ['pending', 'awaiting_permission', 'running', 'completed']);
    assert.equal(s.daemon.appliedEdits.length, 1, 'the edit came as workspace/applyEdit');
    assert.equal(readFileSync(path.join(s.daemon.workspace, 'notes', 'a.txt'), 'utf8'), 'hi\n');
  });

  test('an applyEdit round trip for edit_file changes the file the client owns', async () => {
    const file = path.join(s.daemon.workspace, 'app.py');
    writeFileSync(file, 'def greet(name):\n    return name\n');
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'edit_file', arguments: { path: 'app.py', old_text: 'def greet', new_text: 'def welcome' } } }] },
      { kind: 'text', tokens: ['Renamed.'] },
    ]);
    s.prompt = scriptedPrompt('allow');
    const before = s.daemon.appliedEdits.length;
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'rename greet' }, new RecordingListener());
    assertFinished(outcome);
    assert.equal(s.daemon.appliedEdits.length, before + 1);
    assert.equal(s.daemon.appliedEdits.at(-1).edit.documentChanges[0].textDocument.uri, pathToFileURL(file).href);
    assert.equal(readFileSync(file, 'utf8'), 'def welcome(name):\n    return name\n');
  });

  test('Deny: the call ends denied, nothing is written, the model is told', async () => {
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'denied.txt', content: 'x' } } }] },
      { kind: 'text', tokens: ['OK, I did not.'] },
    ]);
    s.prompt = scriptedPrompt('deny');
    const listener = new RecordingListener();
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'write it' }, listener);
    assertFinished(outcome);
    const callId = s.prompt.asked[0].callId;
    assert.equal(listener.statusesOf(callId).at(-1), 'denied');
    assert.equal(existsSync(path.join(s.daemon.workspace, 'denied.txt')), false);
    const toolMessage = (await fake.chatRequests())[1].body.messages.find((m: any) => m.role === 'tool');
    assert.match(toolMessage.content, /denied|refused/i);
  });

  test('a prompt that fails counts as Deny', async () => {
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'broken.txt', content: 'x' } } }] },
      { kind: 'text', tokens: ['Fine.'] },
    ]);
    s.prompt = Object.assign(async () => {
      throw new Error('dialog crashed');
    }, { asked: [] as PermissionRequestParams[] });
    const listener = new RecordingListener();
    await s.chat.runTurn({ chatId: newChat(), prompt: 'write it' }, listener);
    assert.equal(listener.toolCalls.at(-1)?.status, 'denied');
    assert.equal(existsSync(path.join(s.daemon.workspace, 'broken.txt')), false);
  });

  test('the model reads an open buffer as the editor shows it, not the disk', async () => {
    const file = path.join(s.daemon.workspace, 'draft.md');
    writeFileSync(file, 'saved text\n');
    await s.daemon.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: pathToFileURL(file).href, languageId: 'markdown', version: 1, text: 'unsaved text\n' },
    });
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'read_file', arguments: { path: 'draft.md' } } }] },
      { kind: 'text', tokens: ['Read it.'] },
    ]);
    const listener = new RecordingListener();
    await s.chat.runTurn({ chatId: newChat(), prompt: 'read draft.md' }, listener);
    const completed = listener.toolCalls.find((c) => c.status === 'completed');
    assert.match(completed?.output ?? '', /unsaved text/);
  });

  test('model not found: a readable message with `ollama pull` and Select Model', async () => {
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'hi', model: 'nope:1b' }, new RecordingListener());
    assert.equal(outcome.kind, 'failed');
    const failure = outcome.kind === 'failed' ? outcome.failure : undefined!;
    assert.equal(failure.kind, 'model_not_found');
    const explanation = explainFailure(failure);
    assert.match(explanation.markdown, /`ollama pull nope:1b`/);
    assert.ok(explanation.actions.some((a) => a.title === 'Select Model'));
  });

  test('an Ollama error (HTTP 500) is shown with Ollama\'s words', async () => {
    await fake.script([{ kind: 'error', status: 500, message: 'boom' }]);
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'hi' }, new RecordingListener());
    assert.equal(outcome.kind === 'failed' && outcome.failure.kind, 'upstream_error');
    assert.match(outcome.kind === 'failed' ? explainFailure(outcome.failure).markdown : '', /boom/);
  });

  test('a second message while the chat still answers is refused as busy, without disturbing the first', async () => {
    await fake.script([{ kind: 'text', tokens: ['one ', 'two ', 'three'], delay: 0.05 }]);
    const chatId = newChat();
    const first = new RecordingListener();
    const running = s.chat.runTurn({ chatId, prompt: 'count' }, first);
    const busy = await s.chat.runTurn({ chatId, prompt: 'again' }, new RecordingListener());
    assert.equal(busy.kind === 'failed' && busy.failure.kind, 'chat_busy');
    assert.match(busy.kind === 'failed' ? explainFailure(busy.failure).markdown : '', /still answering/);
    assertFinished(await running);
    assert.equal(first.text, 'one two three');
  });

  test('chat/models lists the installed models with their capabilities', async (t) => {
    const outcome = await s.chat.listModels(true);
    if (outcome.kind === 'unsupported') return t.skip('this daemon has no chat/models yet');
    assert.equal(outcome.kind, 'models');
    const tiny = outcome.kind === 'models' ? outcome.models.find((m) => m.name.startsWith('tiny')) : undefined;
    assert.ok(tiny, 'tiny is listed');
    assert.ok(tiny.capabilities?.includes('tools'));
  });

  test('chat/status notifications reach the turn of their chat', async (t) => {
    const chatId = newChat();
    const listener = new RecordingListener();
    // A model without tools is one reason for a status ("no_tools").
    const outcome = await s.chat.runTurn({ chatId, prompt: 'hello', model: 'plain' }, listener);
    assertFinished(outcome);
    if (listener.statuses.length === 0) return t.skip('this daemon sent no chat/status for this turn');
    for (const status of listener.statuses) assert.equal(status.chatId, chatId);
  });
});

describe('a daemon without a default model', () => {
  const s = useDaemon({});

  test('no model: the message says to select one', async () => {
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'hi' }, new RecordingListener());
    assert.equal(outcome.kind === 'failed' && outcome.failure.kind, 'no_model');
    const explanation = explainFailure(outcome.kind === 'failed' ? outcome.failure : undefined!);
    assert.match(explanation.markdown, /Select Model/);
  });

  test('Always allow (this session) stops the questions for that tool', async () => {
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'one.txt', content: '1' } } }] },
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'two.txt', content: '2' } } }] },
      { kind: 'text', tokens: ['Both written.'] },
    ]);
    s.prompt = scriptedPrompt('allow_always');
    const outcome = await s.chat.runTurn({ chatId: newChat(), prompt: 'write two files', model: 'tiny' }, new RecordingListener());
    assertFinished(outcome);
    assert.equal(s.prompt.asked.length, 1, 'asked once');
    assert.equal(readFileSync(path.join(s.daemon.workspace, 'two.txt'), 'utf8'), '2');
  });
});

describe('Ollama unreachable', () => {
  test('the message names the address and says how to start Ollama or set ollamaChat.ollamaHost', async () => {
    const closedPort = await freePort();
    const daemon = await DaemonProcess.start({
      initializationOptions: initializationOptionsFrom({ ...DEFAULT_SETTINGS, ollamaHost: `http://127.0.0.1:${closedPort}`, model: 'tiny' }),
    });
    const chat = new ChatClient(daemon.connection, async () => 'deny');
    try {
      const outcome = await chat.runTurn({ chatId: newChat(), prompt: 'hi' }, new RecordingListener());
      assert.equal(outcome.kind === 'failed' && outcome.failure.kind, 'ollama_unreachable');
      const explanation = explainFailure(outcome.kind === 'failed' ? outcome.failure : undefined!);
      assert.match(explanation.markdown, new RegExp(`127\\.0\\.0\\.1:${closedPort}`));
      assert.match(explanation.markdown, /ollama serve/);
      assert.match(explanation.markdown, /ollamaChat\.ollamaHost/);
      assert.doesNotMatch(explanation.markdown, /\n\s+at /, 'no stack trace');
    } finally {
      chat.dispose();
      await daemon.stop();
    }
  });

  test('with an OpenAI-compatible server instead, the message speaks of that server and OPENAI_BASE_URL', async () => {
    const closedPort = await freePort();
    // The extension has no setting for these: its users set OLLAMA_CHATD_BACKEND and OPENAI_BASE_URL.
    const initializationOptions = {
      ...initializationOptionsFrom({ ...DEFAULT_SETTINGS, model: 'tiny' }),
      backend: 'openai',
      baseUrl: `http://127.0.0.1:${closedPort}/v1`,
    };
    const daemon = await DaemonProcess.start({ initializationOptions });
    const chat = new ChatClient(daemon.connection, async () => 'deny');
    try {
      const outcome = await chat.runTurn({ chatId: newChat(), prompt: 'hi' }, new RecordingListener());
      const failure = outcome.kind === 'failed' ? outcome.failure : undefined!;
      assert.equal(failure.kind, 'ollama_unreachable');
      const explanation = explainFailure(failure);
      assert.match(explanation.markdown, new RegExp(`OpenAI-compatible server at \`http://127\\.0\\.0\\.1:${closedPort}/v1\``));
      assert.match(explanation.markdown, /OPENAI_BASE_URL/);
      assert.doesNotMatch(explanation.markdown, /ollama serve|ollamaHost/);
    } finally {
      chat.dispose();
      await daemon.stop();
    }
  });
});

/** A port nothing listens on (taken, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
