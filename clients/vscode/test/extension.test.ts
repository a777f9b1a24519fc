/**
 * The whole extension, activated under the `vscode` stub with a stand-in language client
 * that runs the real daemon against the fake Ollama: what a user does, end to end.
 */
import { modelProviders, participants, settings, setWorkspaceFolder, user } from './support/vscodeStub'; // first: installs the stub
import './support/installFakeLanguageClient';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { activate, deactivate } from '../src/extension';
import { CommandIds } from '../src/core/commandIds';
import { ALLOW } from '../src/vscode/permissionPrompt';
import { ChatStreamRecorder } from './support/chatStreamRecorder';
import { LanguageClient } from './support/fakeLanguageClient';
import { FakeOllama } from './support/fakeOllama';
import { PYTHON } from './support/paths';
import { eventually } from './support/processes';
import { makeTempDir } from './support/tempDirs';
import { vscodeStub } from './support/vscodeStub';

let fake: FakeOllama;
let workspace: string;
let context: { subscriptions: { dispose(): unknown }[] };

async function send(prompt: string, history: unknown[] = [], token = new CancellationTokenSource().token) {
  const stream = new ChatStreamRecorder();
  const result = await participants.at(-1)!.handler({ prompt }, { history }, stream, token);
  return { stream, result };
}

const statusBar = () => user.statusBarItems.at(-1)!;

before(async () => {
  fake = await FakeOllama.start();
  workspace = makeTempDir('ollama-chat-ext-');
  setWorkspaceFolder(workspace);
  settings.clear();
  settings.set('ollamaChat.serverCommand', `"${PYTHON}" -m ollama_chatd`);
  settings.set('ollamaChat.ollamaHost', fake.url);
  settings.set('ollamaChat.model', 'tiny');
});

after(async () => {
  await deactivate();
  context?.subscriptions.forEach((d) => d.dispose());
  for (const client of LanguageClient.instances) await client.dispose();
  await fake.stop();
});

describe('the extension with the real daemon', () => {
  test('activation starts the daemon in the background and the status bar learns Ollama is reachable', async () => {
    context = { subscriptions: [] };
    activate(context as any);
    assert.equal(participants.at(-1)!.id, 'ollama-chatd.ollama');
    await eventually(() => (statusBar().tooltip?.includes('reachable') ? true : undefined), 10_000, 'the status bar to show Ollama reachable');
    assert.equal(statusBar().text, '$(comment-discussion) tiny');
    assert.equal(LanguageClient.instances.length, 1);
    assert.deepEqual(LanguageClient.instances[0].clientOptions.initializationOptions, { autoApprove: [], ollamaHost: fake.url, model: 'tiny' });
    assert.deepEqual(LanguageClient.instances[0].serverOptions.args, ['-m', 'ollama_chatd', 'serve']);
  });

  let firstResult: any;
  test('@ollama writes a file: progress lines, the approval dialog with the diff, the file as a reference', async () => {
    await fake.reset();
    await fake.script([
      { kind: 'text', tokens: [], tool_calls: [{ function: { name: 'write_file', arguments: { path: 'hello.txt', content: 'hi\n' } } }] },
      { kind: 'text', tokens: ['Wrote ', 'hello.txt.'] },
    ]);
    user.answerMessage = (m) => (m.modal ? ALLOW : undefined);
    const { stream, result } = await send('create hello.txt saying hi');
    firstResult = result;

    // The status lines come from the daemon's chat/status (absent from older daemons).
    assert.deepEqual(
      stream.of('progress').filter((line) => !line.startsWith('waiting for tiny')),
      ['Writing hello.txt', 'Waiting for your approval: Writing hello.txt'],
    );
    const dialog = user.messages.find((m) => m.modal)!;
    assert.match(dialog.message, /hello\.txt/);
    assert.match(dialog.detail!, /^\+hi$/m);
    assert.deepEqual(stream.of('reference'), [path.join(workspace, 'hello.txt')]);
    assert.equal(stream.answer, 'Wrote hello.txt.');
    assert.equal(readFileSync(path.join(workspace, 'hello.txt'), 'utf8'), 'hi\n');
  });

  test('a follow-up in the same session continues the daemon chat', async () => {
    await fake.reset();
    const history = [{ prompt: 'create hello.txt saying hi' }, { result: firstResult }];
    const { stream, result } = await send('thanks', history);
    assert.equal(stream.answer, 'echo: thanks');
    assert.equal(result.metadata.chatId, firstResult.metadata.chatId);
    const [request] = await fake.chatRequests();
    assert.equal(request.body.messages[0].content, 'create hello.txt saying hi');
  });

  test('Stop mid-answer stops Ollama and keeps the streamed text', async () => {
    await fake.reset();
    await fake.script([{ kind: 'endless', token: 'tok ', delay: 0.005 }]);
    const stop = new CancellationTokenSource();
    const stream = new ChatStreamRecorder();
    const markdown = stream.markdown.bind(stream);
    stream.markdown = (value) => {
      markdown(value);
      if (stream.of('markdown').length === 5) stop.cancel();
    };
    await participants.at(-1)!.handler({ prompt: 'ramble' }, { history: [] }, stream, stop.token);
    assert.ok(stream.of('markdown').length >= 5);
    assert.match(stream.answer, /^(tok )+$/, 'only the streamed text, no error');
    await eventually(async () => ((await fake.chatRequests())[0]?.client_dropped ? true : undefined), 3000, 'Ollama to be dropped');
  });

  const provider = () => modelProviders.get('ollama-chatd');
  const lmRequest = async (messages: unknown[], options: object, token = new CancellationTokenSource().token) => {
    const parts: any[] = [];
    const model = (await provider().provideLanguageModelChatInformation({ silent: true }, token)).find((m: any) => m.id.startsWith('tiny'));
    await provider().provideLanguageModelChatResponse(model, messages, { toolMode: 1, ...options }, { report: (p: any) => parts.push(p) }, token);
    return parts;
  };
  const userSays = (text: string) => ({ role: vscodeStub.LanguageModelChatMessageRole.User, content: [new vscodeStub.LanguageModelTextPart(text)], name: undefined });

  test('Ollama\'s models are VS Code language models, the configured one first, without Copilot', async () => {
    const models = await provider().provideLanguageModelChatInformation({ silent: true }, new CancellationTokenSource().token);
    assert.match(models[0].id, /^tiny(:latest)?$/);
    const byId = new Map<string, any>(models.map((m: any) => [m.id.replace(':latest', ''), m]));
    assert.deepEqual([...byId.keys()].sort(), ['plain', 'thinker', 'tiny', 'vision']);
    assert.deepEqual(
      [byId.get('tiny').maxInputTokens, byId.get('tiny').capabilities, byId.get('tiny').family],
      [8192, { toolCalling: true, imageInput: false }, 'llama'],
    );
    assert.deepEqual(byId.get('vision').capabilities, { toolCalling: false, imageInput: true });
  });

  test('a language-model request streams the reply through model/chat and hands tool calls back', async () => {
    await fake.reset();
    await fake.script([{ kind: 'text', tokens: ['Let me ', 'look.'], tool_calls: [{ function: { name: 'read_page', arguments: { url: 'x' } } }] }]);
    const tools = [{ name: 'read_page', description: 'Read a page', inputSchema: { type: 'object', properties: { url: { type: 'string' } } } }];
    const parts = await lmRequest([userSays('what is on x?')], { tools });

    assert.deepEqual(parts.filter((p) => p instanceof vscodeStub.LanguageModelTextPart).map((p) => p.value).join(''), 'Let me look.');
    const [call] = parts.filter((p) => p instanceof vscodeStub.LanguageModelToolCallPart);
    assert.deepEqual([call.name, call.input], ['read_page', { url: 'x' }]);
    const [request] = await fake.chatRequests();
    assert.deepEqual(request.body.tools.map((t: any) => t.function.name), ['read_page'], 'VS Code\'s tools only, no workspace tools');

    // VS Code runs the tool and calls again with its result.
    await fake.reset();
    await lmRequest(
      [
        userSays('what is on x?'),
        { role: vscodeStub.LanguageModelChatMessageRole.Assistant, content: [new vscodeStub.LanguageModelToolCallPart(call.callId, 'read_page', { url: 'x' })], name: undefined },
        { role: vscodeStub.LanguageModelChatMessageRole.User, content: [new vscodeStub.LanguageModelToolResultPart(call.callId, [new vscodeStub.LanguageModelTextPart('a llama')])], name: undefined },
      ],
      { tools },
    );
    const [again] = await fake.chatRequests();
    assert.deepEqual(again.body.messages.map((m: any) => [m.role, m.content]), [['user', 'what is on x?'], ['assistant', ''], ['tool', 'a llama']]);
    assert.equal(again.body.messages[2].tool_name, 'read_page');
  });

  test('a thinking model\'s reasoning comes as thinking parts, apart from the answer', async () => {
    await fake.reset();
    await fake.script([{ kind: 'text', thinking: ['Let me ', 'think.'], tokens: ['Answer.'] }]);
    const parts: any[] = [];
    await provider().provideLanguageModelChatResponse({ id: 'thinker:latest' }, [userSays('why?')], { toolMode: 1 }, { report: (p: any) => parts.push(p) }, new CancellationTokenSource().token);
    const text = (kind: any) => parts.filter((p) => p instanceof kind).map((p) => p.value).join('');
    assert.deepEqual([text(vscodeStub.LanguageModelThinkingPart), text(vscodeStub.LanguageModelTextPart)], ['Let me think.', 'Answer.']);
  });

  test('an image attached in VS Code reaches a vision model as base64', async () => {
    await fake.reset();
    const image = { mimeType: 'image/png', data: new Uint8Array([137, 80, 78, 71]) };
    const message = { role: vscodeStub.LanguageModelChatMessageRole.User, content: [new vscodeStub.LanguageModelTextPart('what is this?'), image], name: undefined };
    await provider().provideLanguageModelChatResponse({ id: 'vision:latest' }, [message], { toolMode: 1 }, { report: () => undefined }, new CancellationTokenSource().token);
    const [request] = await fake.chatRequests();
    assert.deepEqual([request.body.messages[0].content, request.body.messages[0].images], ['what is this?', ['iVBORw==']]);
  });

  test('cancelling a language-model request drops Ollama\'s stream', async () => {
    await fake.reset();
    await fake.script([{ kind: 'endless', token: 'tok ', delay: 0.005 }]);
    const stop = new CancellationTokenSource();
    const parts: any[] = [];
    const model = { id: 'tiny:latest' };
    await provider().provideLanguageModelChatResponse(model, [userSays('ramble')], { toolMode: 1 }, {
      report: (p: any) => {
        parts.push(p);
        if (parts.length === 5) stop.cancel();
      },
    }, stop.token);
    assert.ok(parts.length >= 5);
    await eventually(async () => ((await fake.chatRequests())[0]?.client_dropped ? true : undefined), 3000, 'Ollama to be dropped');
  });

  test('@ollama answers with the model picked in VS Code\'s chat, which becomes the setting', async () => {
    const ask = (picked: string) =>
      participants.at(-1)!.handler({ prompt: 'hi', model: { vendor: 'ollama-chatd', id: picked } }, { history: [] }, new ChatStreamRecorder(), new CancellationTokenSource().token);
    await fake.reset();
    await ask('thinker:latest'); // VS Code's default pick: the setting still decides
    assert.equal((await fake.chatRequests())[0].body.model, 'tiny');
    await fake.reset();
    await ask('plain:latest');
    assert.equal((await fake.chatRequests())[0].body.model, 'plain:latest');
    assert.equal(settings.get('ollamaChat.model'), 'plain:latest');
    settings.set('ollamaChat.model', 'tiny');
  });

  test('Select Model lists the daemon\'s models and switches without a restart', async () => {
    user.answerQuickPick = (items) => items.find((i: any) => i.model.startsWith('thinker'));
    await vscodeStub.commands.executeCommand(CommandIds.selectModel);
    const items = user.quickPicks.at(-1)!.items;
    assert.deepEqual(items.map((i: any) => i.model.replace(':latest', '')).sort(), ['plain', 'thinker', 'tiny', 'vision']);
    assert.ok(items.find((i: any) => i.model.startsWith('tiny')).label.startsWith('$(check) '), 'the current model is marked');
    assert.match(items.find((i: any) => i.model.startsWith('thinker')).detail, /tools: can read and edit your files · thinking/);
    const chosen = String(settings.get('ollamaChat.model'));
    assert.match(chosen, /^thinker(:latest)?$/);
    assert.equal(statusBar().text, `$(comment-discussion) ${chosen}`);
    assert.equal(LanguageClient.instances.length, 1, 'no restart for a model change');

    await fake.reset();
    await send('which model?');
    assert.equal((await fake.chatRequests())[0].body.model, chosen);
  });

  test('changing the Ollama address restarts the daemon with the new options; the old process exits', async () => {
    const old = LanguageClient.instances[0];
    settings.set('ollamaChat.ollamaHost', fake.url.replace('127.0.0.1', 'localhost'));
    await eventually(() => (LanguageClient.instances.length === 2 && LanguageClient.instances[1].daemon ? true : undefined), 10_000, 'a new daemon');
    assert.equal(old.isProcessAlive, false);
    assert.equal(LanguageClient.instances[1].clientOptions.initializationOptions.ollamaHost, fake.url.replace('127.0.0.1', 'localhost'));

    await fake.reset();
    const { stream } = await send('still there?', [{ prompt: 'create hello.txt saying hi' }, { result: firstResult }]);
    assert.equal(stream.answer, 'echo: still there?');
    const [request] = await fake.chatRequests();
    const remembered = request.body.messages.some((m: any) => m.content === 'create hello.txt saying hi');
    // A daemon with a chat store (issue 5) continues the chat; one without says it forgot.
    assert.equal(stream.of('progress').some((line) => /restarted.*does not remember/.test(line)), !remembered);
  });

  test('closing the window stops every daemon', async () => {
    await deactivate();
    assert.ok(LanguageClient.instances.every((c) => !c.isProcessAlive));
    context.subscriptions.forEach((d) => d.dispose());
  });
});

describe('the extension without ollama-chatd', () => {
  test('explains the install in a notification and in the chat, with a one-click copy', async () => {
    user.reset();
    settings.set('ollamaChat.serverCommand', path.join(workspace, 'no-such-ollama-chatd'));
    context = { subscriptions: [] };
    activate(context as any);
    const notification = await eventually(() => user.messages.find((m) => m.severity === 'error'), 5000, 'the notification');
    assert.match(notification.message, /no-such-ollama-chatd.*ollamaChat\.serverCommand.*does not exist/);
    assert.ok(notification.items.includes('Copy install command'));

    const { stream } = await send('hello');
    assert.match(stream.answer, /Install it with `(pipx|pip) install ollama-chatd`/);
    const copy = stream.buttons().find((b) => b.value === 'Copy install command')!;
    await vscodeStub.commands.executeCommand(copy.command, ...(copy.arguments ?? []));
    assert.match(user.clipboard[0], /^(pipx|pip) install ollama-chatd$/);
    assert.equal(statusBar().text, '$(warning) ollama-chatd not running');
  });
});
