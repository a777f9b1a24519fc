/**
 * The `@ollama` participant handler against the `vscode` stub: for each thing the daemon
 * reports, what the user sees in the chat view.
 */
import { setWorkspaceFolder, Uri, user } from './support/vscodeStub'; // first: installs the stub
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import type { TurnOutcome } from '../src/core/chatClient';
import { explainMissingServer } from '../src/core/serverCommand';
import { DEFAULT_SETTINGS, type Settings } from '../src/core/settings';
import { createChatRequestHandler, type Acquisition } from '../src/vscode/participant';
import { ChatStreamRecorder } from './support/chatStreamRecorder';
import { finished, ScriptedChat, type ScriptedEvent } from './support/scriptedChat';

const WORKSPACE = '/home/ada/project';

interface Run {
  stream: ChatStreamRecorder;
  result: any;
  chat: ScriptedChat;
  outcomes: TurnOutcome[];
}

async function ask(
  events: ScriptedEvent[],
  outcome: TurnOutcome | ((token: unknown) => TurnOutcome),
  options: {
    history?: unknown[];
    settings?: Partial<Settings>;
    serverSession?: string;
    token?: CancellationTokenSource;
    prompt?: string;
    references?: unknown[];
    storedChats?: string[];
  } = {},
): Promise<Run> {
  const chat = new ScriptedChat(events, outcome as any);
  options.storedChats?.forEach((id) => chat.storedChats.add(id));
  const outcomes: TurnOutcome[] = [];
  const handler = createChatRequestHandler({
    acquireServer: async (): Promise<Acquisition> => ({ kind: 'ready', chat, serverSession: options.serverSession ?? 'session-1' }),
    settings: () => ({ ...DEFAULT_SETTINGS, model: 'qwen3:8b', ...options.settings }),
    workspaceFolders: () => [{ name: 'project', fsPath: WORKSPACE }],
    observeTurn: (o) => outcomes.push(o),
  });
  const stream = new ChatStreamRecorder();
  const token = (options.token ?? new CancellationTokenSource()).token;
  const request = { prompt: options.prompt ?? 'hello', references: options.references ?? [] };
  const result = await handler(request as any, { history: options.history ?? [] } as any, stream as any, token as any);
  return { stream, result, chat, outcomes };
}

beforeEach(() => {
  user.reset();
  setWorkspaceFolder(WORKSPACE);
});

describe('streaming an answer', () => {
  test('content tokens appear as markdown, in order, as they arrive', async () => {
    const { stream, chat } = await ask([{ token: 'The sky ' }, { token: 'is **blue**.' }], finished('The sky is **blue**.'));
    assert.deepEqual(stream.of('markdown'), ['The sky ', 'is **blue**.']);
    assert.deepEqual(chat.turns[0].params, { chatId: chat.turns[0].params.chatId, prompt: 'hello', model: 'qwen3:8b' });
  });

  test('thinking shows as one progress line per stretch, never in the answer', async () => {
    const { stream } = await ask(
      [
        { token: 'Rayleigh', kind: 'thinking' },
        { token: ' scattering', kind: 'thinking' },
        { token: 'Blue light scatters more.' },
      ],
      finished('Blue light scatters more.'),
    );
    assert.deepEqual(stream.of('progress'), ['Thinking…']);
    assert.equal(stream.answer, 'Blue light scatters more.');
    assert.doesNotMatch(stream.answer, /Rayleigh/);
  });

  test('the empty model setting sends no model (the daemon then uses its default)', async () => {
    const { chat } = await ask([{ token: 'hi' }], finished('hi'), { settings: { model: '' } });
    assert.equal('model' in chat.turns[0].params, false);
  });

  test('an answer with nothing in it says so', async () => {
    const { stream } = await ask([], finished(''));
    assert.deepEqual(stream.of('markdown'), ['*The model gave an empty answer.*']);
  });

  test('an answer cut at the length limit says so after the text', async () => {
    const { stream } = await ask([{ token: 'Once upon' }], finished('Once upon', 'max_tokens'));
    assert.equal(stream.answer, 'Once upon\n\n*The answer was cut off: the model reached its length limit.*');
  });

  test('hitting the tool-round limit says how to go on', async () => {
    const { stream } = await ask([{ token: 'Still looking.' }], finished('Still looking.', 'max_tool_rounds'));
    assert.match(stream.answer, /maximum number of tool rounds.*continue/);
  });
});

describe('attached files', () => {
  test('workspace files and selections are named to the model; others are left out', async () => {
    const selection = { uri: Uri.file(`${WORKSPACE}/src/util.py`), range: { start: { line: 2, character: 0 }, end: { line: 8, character: 4 } } };
    const { chat } = await ask([{ token: 'ok' }], finished('ok'), {
      prompt: 'explain #file:app.py',
      references: [
        { id: 'vscode.file', value: Uri.file(`${WORKSPACE}/src/app.py`) },
        { id: 'vscode.selection', value: selection },
        { id: 'vscode.file', value: Uri.file('/etc/hosts') },
        { id: 'some.variable', value: 'a string value' },
      ],
    });
    assert.equal(
      chat.turns[0].params.prompt,
      'explain #file:app.py\n\n(Attached by the user, relative to the workspace: src/app.py, src/util.py (lines 3-9). Read them with read_file.)',
    );
  });
});

describe('tool calls', () => {
  const call = (callId: string, name: string, args: Record<string, unknown>, status: string, extra: object = {}): ScriptedEvent => ({
    toolCall: { callId, name, arguments: args, status, ...extra },
  });

  test('each call is one progress line, announced once however many statuses follow', async () => {
    const { stream } = await ask(
      [
        call('c1', 'read_file', { path: 'src/app.py' }, 'pending'),
        call('c1', 'read_file', { path: 'src/app.py' }, 'running'),
        call('c1', 'read_file', { path: 'src/app.py' }, 'completed', { output: '1\tdef greet' }),
        call('c2', 'search_text', { pattern: 'TODO', path: 'src' }, 'pending'),
        call('c2', 'search_text', { pattern: 'TODO', path: 'src' }, 'completed'),
        call('c3', 'list_directory', {}, 'pending'),
        call('c4', 'find_files', { glob: '**/*.ts' }, 'pending'),
        call('c5', 'read_file', { path: 'a.py', start_line: 10, end_line: 20 }, 'pending'),
        { token: 'Found 2 TODOs.' },
      ],
      finished('Found 2 TODOs.'),
    );
    assert.deepEqual(stream.of('progress'), [
      'Reading src/app.py',
      'Searching for "TODO" in src',
      'Listing the workspace',
      'Finding files matching **/*.ts',
      'Reading a.py (lines 10-20)',
    ]);
    assert.equal(stream.answer, 'Found 2 TODOs.');
  });

  test('an edit shows the wait for approval, then the edited file as a reference', async () => {
    const args = { path: 'src/app.py', old_text: 'a', new_text: 'b' };
    const { stream } = await ask(
      [
        call('c1', 'edit_file', args, 'pending'),
        call('c1', 'edit_file', args, 'awaiting_permission'),
        call('c1', 'edit_file', args, 'running'),
        call('c1', 'edit_file', args, 'completed', { output: 'Edited src/app.py' }),
        { token: 'Done.' },
      ],
      finished('Done.'),
    );
    assert.deepEqual(stream.of('progress'), ['Editing src/app.py', 'Waiting for your approval: Editing src/app.py']);
    assert.deepEqual(stream.of('reference'), [`${WORKSPACE}/src/app.py`]);
  });

  test('a denied write and a failed read are said plainly; nothing is referenced', async () => {
    const { stream } = await ask(
      [
        call('c1', 'write_file', { path: 'notes.md', content: 'x' }, 'pending'),
        call('c1', 'write_file', { path: 'notes.md', content: 'x' }, 'denied', { error: 'The user denied this change.' }),
        call('c2', 'read_file', { path: '../secrets' }, 'failed', { error: 'Refused: "../secrets" leaves the workspace.\nmore' }),
      ],
      finished('OK'),
    );
    assert.deepEqual(stream.of('progress'), [
      'Writing notes.md',
      'Not done (you denied it): Writing notes.md',
      'Reading ../secrets',
      'Failed: Reading ../secrets. Refused: "../secrets" leaves the workspace.',
    ]);
    assert.deepEqual(stream.of('reference'), []);
  });

  test('a status the extension does not know is shown as is', async () => {
    const { stream } = await ask([call('c1', 'fetch_url', { url: 'x' }, 'queued')], finished('ok'));
    assert.deepEqual(stream.of('progress'), ['Running the tool fetch_url', 'Running the tool fetch_url: queued']);
  });
});

describe('Revert this turn', () => {
  const edit = (callId: string, status: string): ScriptedEvent => ({
    toolCall: { callId, name: 'edit_file', arguments: { path: 'src/app.py', old_text: 'a', new_text: 'b' }, status },
  });

  test('an answer that changed a file ends with the button, naming its turn and prompt', async () => {
    const { stream, result } = await ask([edit('c1', 'running'), edit('c1', 'completed'), { token: 'Done.' }], finished('Done.'), {
      prompt: 'rename it',
    });
    const [button] = stream.buttons();
    assert.equal(button.value, 'Revert this turn');
    assert.equal(button.command, 'ollamaChat.revertTurn');
    assert.deepEqual(button.arguments, [{ chatId: result.metadata.chatId, turn: 0, prompt: 'rename it' }]);
  });

  test('an answer that changed nothing, or whose change was denied, has no button', async () => {
    const read: ScriptedEvent = { toolCall: { callId: 'r', name: 'read_file', arguments: { path: 'a' }, status: 'completed' } };
    for (const events of [[read], [edit('c1', 'denied')], [edit('c1', 'failed')]]) {
      const { stream } = await ask([...events, { token: 'ok' }], finished('ok'));
      assert.deepEqual(stream.buttons(), []);
    }
  });
});

describe('chat/status', () => {
  test('waiting (once per turn), retrying, truncated and no_tools show as progress; streaming adds nothing', async () => {
    const { stream } = await ask(
      [
        { status: { state: 'waiting', message: 'waiting for qwen3:8b' } },
        { status: { state: 'streaming', message: 'qwen3:8b is answering' } },
        { status: { state: 'no_tools', message: 'plain cannot use tools: it answers without access to the workspace' } },
        { status: { state: 'truncated', message: "left 4 older messages out so the chat fits the model's 4096-token context window" } },
        { status: { state: 'waiting', message: 'waiting for qwen3:8b' } },
        { status: { state: 'retrying', message: 'Ollama is busy (server busy); trying again in 1 s' } },
      ],
      finished('ok'),
    );
    assert.deepEqual(stream.of('progress'), [
      'waiting for qwen3:8b',
      'plain cannot use tools: it answers without access to the workspace',
      "left 4 older messages out so the chat fits the model's 4096-token context window",
      'Ollama is busy (server busy); trying again in 1 s',
    ]);
  });
});

describe('Stop', () => {
  test('the handler passes its own cancellation token to the turn', async () => {
    const source = new CancellationTokenSource();
    const { chat } = await ask([{ token: 'x' }], finished('x'), { token: source });
    assert.equal(chat.turns[0].token, source.token);
  });

  test('a stopped answer keeps what was streamed and adds nothing', async () => {
    const source = new CancellationTokenSource();
    const { stream, result } = await ask(
      [{ token: 'Once upon ' }, { token: 'a time' }],
      () => {
        source.cancel();
        return { kind: 'cancelled' };
      },
      { token: source },
    );
    assert.deepEqual(stream.parts, [
      { kind: 'markdown', value: 'Once upon ' },
      { kind: 'markdown', value: 'a time' },
    ]);
    assert.equal(typeof result.metadata.chatId, 'string');
  });
});

describe('one daemon chat per VS Code chat session', () => {
  test('the first message starts a chat; its id is kept in the result and reused by follow-ups', async () => {
    const first = await ask([{ token: 'hi' }], finished('hi'));
    const chatId = first.chat.turns[0].params.chatId;
    assert.match(chatId, /^vscode-/);
    assert.deepEqual(first.result.metadata, { chatId, serverSession: 'session-1' });

    const history = [{ prompt: 'hello' }, { result: first.result, response: [] }];
    const second = await ask([{ token: 'again' }], finished('again'), { history, prompt: 'and then?' });
    assert.equal(second.chat.turns[0].params.chatId, chatId);
    assert.equal(second.chat.turns[0].params.prompt, 'and then?');
    assert.deepEqual(second.stream.of('progress'), []);
  });

  test('another session (no history) gets another chat', async () => {
    const a = await ask([{ token: 'a' }], finished('a'));
    const b = await ask([{ token: 'b' }], finished('b'));
    assert.notEqual(a.chat.turns[0].params.chatId, b.chat.turns[0].params.chatId);
  });

  test('after a daemon restart, the user is told the model forgot the earlier messages', async () => {
    const history = [{ result: { metadata: { chatId: 'vscode-old', serverSession: 'session-0' } } }];
    const { stream, result } = await ask([{ token: 'hi' }], finished('hi'), { history, serverSession: 'session-1' });
    assert.match(stream.of('progress')[0], /restarted.*does not remember/);
    assert.deepEqual(result.metadata, { chatId: 'vscode-old', serverSession: 'session-1' });
  });

  test('a daemon that kept the chat across the restart (a chat store) continues it without a note', async () => {
    const history = [{ result: { metadata: { chatId: 'vscode-old', serverSession: 'session-0' } } }];
    const { stream, chat } = await ask([{ token: 'hi' }], finished('hi'), { history, serverSession: 'session-1', storedChats: ['vscode-old'] });
    assert.deepEqual(stream.of('progress'), []);
    assert.equal(chat.turns[0].params.chatId, 'vscode-old');
  });
});

describe('errors are readable chat messages with the fix, never a stack trace', () => {
  const failed = (code: number, kind: string, message: string, data: Record<string, unknown> = {}): TurnOutcome => ({
    kind: 'failed',
    failure: { code, kind, message, data: { kind, ...data } },
  });

  test('Ollama unreachable: how to start it or set the address, with a button to the setting', async () => {
    const { stream, outcomes } = await ask(
      [],
      failed(-32001, 'ollama_unreachable', 'Cannot reach Ollama at http://127.0.0.1:11434 (connection refused).', { address: 'http://127.0.0.1:11434' }),
    );
    assert.match(stream.answer, /^⚠️ Cannot reach Ollama at `http:\/\/127\.0\.0\.1:11434`/);
    assert.match(stream.answer, /`ollama serve`/);
    assert.match(stream.answer, /\*\*ollamaChat\.ollamaHost\*\*/);
    assert.deepEqual(stream.buttons(), [
      { kind: 'button', value: 'Set Ollama Address', command: 'ollamaChat.openSettings', arguments: ['ollamaChat.ollamaHost'] },
    ]);
    assert.equal(outcomes[0].kind, 'failed', 'the status bar is told');
  });

  test('unknown model: `ollama pull`, Select Model and a copy button', async () => {
    const { stream } = await ask([], failed(-32002, 'model_not_found', 'Model "llama3.2" is not available.', { model: 'llama3.2' }));
    assert.match(stream.answer, /`ollama pull llama3\.2`/);
    assert.deepEqual(stream.buttons().map((b) => b.value), ['Select Model', 'Copy "ollama pull llama3.2"']);
  });

  test('no model chosen: Select Model', async () => {
    const { stream } = await ask([], failed(-32602, 'no_model', 'No model chosen for chat "c2".'));
    assert.match(stream.answer, /Ollama: Select Model/);
    assert.deepEqual(stream.buttons().map((b) => b.command), ['ollamaChat.selectModel']);
  });

  test('busy: wait or press Stop', async () => {
    const { stream } = await ask([], failed(-32004, 'chat_busy', 'Chat "c1" is still answering.'));
    assert.match(stream.answer, /still answering.*Stop/);
  });

  test('an error after some text starts its own paragraph, and the text stays', async () => {
    const { stream } = await ask(
      [{ token: 'The first primes are 2,' }],
      failed(-32003, 'upstream_error', 'Ollama error during the reply: unexpected EOF. The partial reply was kept in the chat.', { status: null }),
    );
    assert.equal(stream.answer, 'The first primes are 2,\n\n⚠️ Ollama error during the reply: unexpected EOF. The partial reply was kept in the chat.');
  });

  test('a dead daemon: restart it or read its log', async () => {
    const { stream } = await ask([], { kind: 'failed', failure: { kind: 'server_not_running', message: 'Connection is closed.', data: {} } });
    assert.match(stream.answer, /not running/);
    assert.deepEqual(stream.buttons().map((b) => b.value), ['Restart Server', 'Show Server Log']);
  });

  test('ollama-chatd not installed: what it is, the install command and a one-click copy', async () => {
    const explanation = explainMissingServer('ollama-chatd', false, { PATH: '', platform: 'linux' });
    const handler = createChatRequestHandler({
      acquireServer: async () => ({ kind: 'unavailable', explanation }),
      settings: () => DEFAULT_SETTINGS,
      workspaceFolders: () => [],
    });
    const stream = new ChatStreamRecorder();
    const result: any = await handler({ prompt: 'hi' } as any, { history: [] } as any, stream as any, new CancellationTokenSource().token as any);
    assert.match(stream.answer, /`ollama-chatd` was not found on your PATH/);
    assert.match(stream.answer, /`pip install ollama-chatd`/);
    const copy = stream.buttons().find((b) => b.value === 'Copy install command');
    assert.deepEqual(copy?.arguments, ['pip install ollama-chatd']);
    assert.equal(typeof result.metadata.chatId, 'string');
  });

  test('a failure inside the extension itself is a message too', async () => {
    const handler = createChatRequestHandler({
      acquireServer: async () => {
        throw new TypeError('cannot read properties of undefined');
      },
      settings: () => DEFAULT_SETTINGS,
      workspaceFolders: () => [],
    });
    const stream = new ChatStreamRecorder();
    await handler({ prompt: 'hi' } as any, { history: [] } as any, stream as any, new CancellationTokenSource().token as any);
    assert.equal(stream.answer, '⚠️ The Ollama extension failed: cannot read properties of undefined');
    assert.doesNotMatch(stream.answer, /\n\s+at /);
  });
});
