/**
 * Commands, the permission prompt, the status bar and the settings against the `vscode`
 * stub: what the user sees and what each answer does.
 */
import { ConfigurationTarget, settings, user, vscodeStub } from './support/vscodeStub'; // first: installs the stub
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import type { ModelsOutcome } from '../src/core/chatClient';
import { CommandIds } from '../src/core/commandIds';
import { explainMissingServer } from '../src/core/serverCommand';
import type { ServerAcquisition } from '../src/core/serverManager';
import { type CommandDeps, registerCommands } from '../src/vscode/commands';
import { ALLOW, ALWAYS_ALLOW, createPermissionPrompt, DENY } from '../src/vscode/permissionPrompt';
import { readSettings, saveModel, watchSettings } from '../src/vscode/settingsStore';
import { StatusBar } from '../src/vscode/statusBar';

const MODELS = [
  { name: 'qwen3:8b', sizeBytes: 5_225_388_164, family: 'qwen3', parameterSize: '8.2B', quantization: 'Q4_K_M', capabilities: ['completion', 'tools', 'thinking'], contextLength: 40960 },
  { name: 'llama3.2', sizeBytes: 2_019_393_189, family: 'llama', parameterSize: '3.2B', quantization: 'Q4_K_M', capabilities: ['completion'], contextLength: 4096 },
  { name: 'nomic-embed-text', sizeBytes: 274_302_450, family: 'nomic-bert', parameterSize: '137M', quantization: 'F16', capabilities: ['embedding'], contextLength: 2048 },
];

function ready(models: ModelsOutcome): ServerAcquisition {
  return { kind: 'ready', chat: { listModels: async () => models } as any, serverSession: 's' };
}

let disposables: { dispose(): unknown }[] = [];
let restarts = 0;
let observed: ModelsOutcome[] = [];

function useCommands(acquisition: ServerAcquisition): void {
  const deps: CommandDeps = {
    acquireServer: async () => acquisition,
    restartServer: async () => {
      restarts++;
      return acquisition;
    },
    currentModel: () => readSettings().model,
    saveModel,
    showLog: () => user.outputShown++,
    observeModels: (o) => observed.push(o),
  };
  disposables = registerCommands(deps);
}

const run = (command: string, ...args: unknown[]) => vscodeStub.commands.executeCommand(command, ...args);

beforeEach(() => {
  user.reset();
  settings.clear();
  restarts = 0;
  observed = [];
});
afterEach(() => {
  disposables.forEach((d) => d.dispose());
});

describe('Ollama: Select Model', () => {
  test('lists chat models with what they can do, marks the current one, and saves the pick', async () => {
    settings.set('ollamaChat.model', 'llama3.2');
    useCommands(ready({ kind: 'models', models: MODELS }));
    user.answerQuickPick = (items) => items.find((i: any) => i.model === 'qwen3:8b');
    await run(CommandIds.selectModel);

    const [{ items, options }] = user.quickPicks;
    assert.deepEqual(
      items.map((i: any) => [i.label, i.description, i.detail]),
      [
        ['qwen3:8b', '8.2B · Q4_K_M · 5.2 GB', 'tools: can read and edit your files · thinking · context 40,960 tokens'],
        ['$(check) llama3.2', '3.2B · Q4_K_M · 2.0 GB', 'no tools: chat only, cannot read your files · context 4,096 tokens'],
      ],
      'the embedding model is left out',
    );
    assert.equal(options.placeHolder, 'Current: llama3.2');
    assert.equal(settings.get('ollamaChat.model'), 'qwen3:8b');
    assert.equal(observed[0].kind, 'models', 'the status bar learns Ollama is reachable');
  });

  test('a workspace choice is updated in the workspace settings', async () => {
    settings.set('ollamaChat.model', 'llama3.2', ConfigurationTarget.Workspace);
    useCommands(ready({ kind: 'models', models: MODELS }));
    user.answerQuickPick = (items) => items[0];
    await run(CommandIds.selectModel);
    assert.deepEqual(vscodeStub.workspace.getConfiguration('ollamaChat').inspect('model').workspaceValue, 'qwen3:8b');
  });

  test('dismissing the picker changes nothing', async () => {
    settings.set('ollamaChat.model', 'llama3.2');
    useCommands(ready({ kind: 'models', models: MODELS }));
    await run(CommandIds.selectModel);
    assert.equal(settings.get('ollamaChat.model'), 'llama3.2');
  });

  test('Ollama unreachable: an error that says how to start it, with a button to set the address', async () => {
    useCommands(ready({
      kind: 'failed',
      failure: { code: -32001, kind: 'ollama_unreachable', message: 'Cannot reach Ollama', data: { address: 'http://127.0.0.1:11434' } },
    }));
    user.answerMessage = () => 'Set Ollama Address';
    await run(CommandIds.selectModel);
    const [message] = user.messages;
    assert.equal(message.severity, 'error');
    assert.match(message.message, /Cannot reach Ollama at "http:\/\/127\.0\.0\.1:11434"\. Start Ollama .*"ollama serve".*ollamaChat\.ollamaHost/);
    assert.deepEqual(message.items, ['Set Ollama Address']);
    assert.deepEqual(user.executedCommands.at(-1), { command: 'workbench.action.openSettings', args: ['ollamaChat.ollamaHost'] });
  });

  test('no chat model installed: how to download one', async () => {
    useCommands(ready({ kind: 'models', models: [MODELS[2]] }));
    user.answerMessage = (m) => m.items[0];
    await run(CommandIds.selectModel);
    assert.match(user.messages[0].message, /"ollama pull qwen3:8b"/);
    assert.deepEqual(user.clipboard, ['ollama pull qwen3:8b']);
  });

  test('a daemon without chat/models: the name is typed instead', async () => {
    useCommands(ready({ kind: 'unsupported' }));
    user.answerInputBox = () => '  mistral:7b ';
    await run(CommandIds.selectModel);
    assert.equal(user.inputBoxes.length, 1);
    assert.equal(settings.get('ollamaChat.model'), 'mistral:7b');
  });

  test('ollama-chatd missing: the explanation and a one-click copy of the install command', async () => {
    useCommands({ kind: 'unavailable', explanation: explainMissingServer('ollama-chatd', false, { PATH: '', platform: 'linux' }) });
    user.answerMessage = () => 'Copy install command';
    await run(CommandIds.selectModel);
    const [error, copied] = user.messages;
    assert.match(error.message, /"ollama-chatd" was not found on your PATH.*Install it with "pip install ollama-chatd"/);
    assert.deepEqual(error.items, ['Copy install command', 'Set Server Command', 'Restart Server']);
    assert.deepEqual(user.clipboard, ['pip install ollama-chatd']);
    assert.match(copied.message, /Copied "pip install ollama-chatd"/);
  });
});

describe('Ollama: Show Server Log and Ollama: Restart Server', () => {
  test('Show Server Log reveals the output channel', async () => {
    useCommands(ready({ kind: 'models', models: [] }));
    await run(CommandIds.showServerLog);
    assert.equal(user.outputShown, 1);
  });

  test('Restart Server restarts and confirms', async () => {
    useCommands(ready({ kind: 'models', models: MODELS }));
    await run(CommandIds.restartServer);
    assert.equal(restarts, 1);
    assert.deepEqual(user.messages.map((m) => m.message), ['ollama-chatd restarted.']);
  });

  test('Restart Server with Ollama down warns how to fix it', async () => {
    useCommands(ready({ kind: 'failed', failure: { code: -32001, kind: 'ollama_unreachable', message: '', data: { address: 'http://gpu:11434' } } }));
    await run(CommandIds.restartServer);
    assert.equal(user.messages[0].severity, 'warning');
    assert.match(user.messages[0].message, /Cannot reach Ollama at "http:\/\/gpu:11434"/);
  });
});

describe('the approval prompt', () => {
  const request = {
    chatId: 'c1',
    callId: 'call-3',
    name: 'edit_file',
    arguments: { path: 'src/app.py' },
    title: 'Edit src/app.py',
    diff: '--- a/src/app.py\n+++ b/src/app.py\n@@ -1,2 +1,2 @@\n-def greet(name):\n+def welcome(name):\n     return name\n',
  };

  for (const [button, decision] of [[ALLOW, 'allow'], [ALWAYS_ALLOW, 'allow_always'], [DENY, 'deny'], [undefined, 'deny']] as const) {
    test(`${button ?? 'closing the dialog'} answers ${decision}`, async () => {
      user.answerMessage = () => button;
      const answer = await createPermissionPrompt()(request, new CancellationTokenSource().token);
      assert.equal(answer, decision);
    });
  }

  test('is a modal showing the file and the diff, with Allow, Always allow (this session) and Deny', async () => {
    await createPermissionPrompt()(request, new CancellationTokenSource().token);
    const [shown] = user.messages;
    assert.equal(shown.modal, true);
    assert.match(shown.message, /Edit src\/app\.py/);
    assert.match(shown.detail!, /^--- a\/src\/app\.py\n\+\+\+ b\/src\/app\.py\n@@ -1,2 \+1,2 @@\n-def greet\(name\):\n\+def welcome\(name\):/);
    assert.deepEqual(shown.items, ['Allow', 'Always allow (this session)', 'Deny']);
  });

  test('a command is shown exactly, and "always" is for that command', async () => {
    const command = 'pytest -x && echo done';
    const run = { ...request, name: 'run_command', arguments: { command }, title: command, diff: '' };
    await createPermissionPrompt()(run, new CancellationTokenSource().token);
    const [shown] = user.messages;
    assert.equal(shown.message, 'Ollama wants to run a command in your workspace');
    assert.match(shown.detail!, /^\$ pytest -x && echo done\n\n.*stops asking for this exact command/);
  });

  test('a long diff is cut in the dialog', async () => {
    const diff = Array.from({ length: 200 }, (_, i) => `+line ${i}`).join('\n');
    await createPermissionPrompt()({ ...request, diff }, new CancellationTokenSource().token);
    assert.match(user.messages[0].detail!, /\+line 59\n… 140 more lines of diff/);
  });

  test('an answer after the daemon withdrew the question (Stop) is a deny', async () => {
    const source = new CancellationTokenSource();
    user.answerMessage = () => {
      source.cancel();
      return ALLOW;
    };
    assert.equal(await createPermissionPrompt()(request, source.token), 'deny');
  });
});

describe('the status bar', () => {
  test('shows the model, and whether Ollama answers', () => {
    settings.set('ollamaChat.model', 'qwen3:8b');
    const bar = new StatusBar(() => readSettings().model);
    const item = user.statusBarItems.at(-1)!;
    assert.equal(item.visible, true);
    assert.equal(item.text, '$(comment-discussion) qwen3:8b');
    assert.equal(item.command, CommandIds.selectModel);

    bar.observeModels({ kind: 'failed', failure: { code: -32001, kind: 'ollama_unreachable', message: '', data: { address: 'http://127.0.0.1:11434' } } });
    assert.equal(item.text, '$(warning) Ollama unreachable · qwen3:8b');
    assert.match(item.tooltip!, /Start Ollama .*ollamaChat\.ollamaHost/);
    assert.equal(item.backgroundColor?.id, 'statusBarItem.warningBackground');

    bar.observeTurn({ kind: 'finished', result: { chatId: 'c', stopReason: 'end_turn', message: { role: 'assistant', content: '' } } });
    assert.equal(item.text, '$(comment-discussion) qwen3:8b');
    assert.match(item.tooltip!, /Ollama is reachable/);
    assert.equal(item.backgroundColor, undefined);

    settings.set('ollamaChat.model', '');
    bar.refresh();
    assert.equal(item.text, '$(comment-discussion) no model');
    bar.dispose();
  });

  test('with an OpenAI-compatible server, an unreachable one is the model server, not Ollama', () => {
    settings.set('ollamaChat.model', 'smol');
    const bar = new StatusBar(() => readSettings().model);
    const item = user.statusBarItems.at(-1)!;
    const data = { address: 'http://127.0.0.1:8080/v1', backend: 'openai' };
    bar.observeModels({ kind: 'failed', failure: { code: -32001, kind: 'ollama_unreachable', message: '', data } });
    assert.equal(item.text, '$(warning) Model server unreachable · smol');
    assert.match(item.tooltip!, /Cannot reach the OpenAI-compatible server at "http:\/\/127\.0\.0\.1:8080\/v1"/);
    bar.dispose();
  });
});

describe('settings', () => {
  test('are read with safe defaults', () => {
    assert.deepEqual(readSettings(), { serverCommand: '', ollamaHost: '', model: '', autoApprove: [], mcpServers: {} });
    settings.set('ollamaChat.autoApprove', ['edit_file', 42]);
    assert.deepEqual(readSettings().autoApprove, ['edit_file']);
  });

  test('the command, the address and auto-approval come from User settings only, the model from anywhere', () => {
    settings.clear();
    settings.set('ollamaChat.serverCommand', '/repo/evil', ConfigurationTarget.Workspace);
    settings.set('ollamaChat.ollamaHost', 'http://attacker:11434', ConfigurationTarget.WorkspaceFolder);
    settings.set('ollamaChat.autoApprove', ['write_file'], ConfigurationTarget.Workspace);
    settings.set('ollamaChat.model', 'llama3.2', ConfigurationTarget.Workspace);
    assert.deepEqual(readSettings(), { serverCommand: '', ollamaHost: '', model: 'llama3.2', autoApprove: [], mcpServers: {} });
    settings.set('ollamaChat.serverCommand', '/home/me/bin/ollama-chatd');
    assert.equal(readSettings().serverCommand, '/home/me/bin/ollama-chatd');
    settings.clear();
  });

  test('the address, the command and auto-approval restart the daemon; the model does not', () => {
    const seen: string[] = [];
    const watcher = watchSettings({ onRestartNeeded: () => seen.push('restart'), onModelChanged: () => seen.push('model') });
    settings.set('ollamaChat.ollamaHost', 'http://gpu:11434');
    settings.set('ollamaChat.serverCommand', '/opt/ollama-chatd');
    settings.set('ollamaChat.autoApprove', ['write_file']);
    settings.set('ollamaChat.model', 'qwen3:8b');
    settings.set('editor.fontSize', 14);
    watcher.dispose();
    assert.deepEqual(seen, ['restart', 'restart', 'restart', 'model']);
  });
});

describe('Revert this turn', () => {
  const RESULT = { restored: ['src/app.py', 'docs/new.md'], skipped: [], commandsNotUndone: [] };

  function revertingServer(prompts: string[], result: object = RESULT) {
    const reverts: { chatId: string; turn: number }[] = [];
    const chat = {
      history: async (chatId: string) => ({ chatId, messages: prompts.map((content) => ({ role: 'user', content })) }),
      revert: async (chatId: string, turn: number) => {
        reverts.push({ chatId, turn });
        return { kind: 'reverted', result };
      },
    };
    useCommands({ kind: 'ready', chat: chat as any, serverSession: 's' });
    return reverts;
  }

  test('asks first, naming the later turns it takes back too, then reverts and says what it did', async () => {
    const reverts = revertingServer(['hello', 'rename it', 'and test it']);
    user.answerMessage = (m) => (m.modal ? 'Revert' : undefined);
    await run(CommandIds.revertTurn, { chatId: 'c1', turn: 1, prompt: 'rename it' });
    assert.deepEqual(reverts, [{ chatId: 'c1', turn: 1 }]);
    const [question, summary] = user.messages;
    assert.equal(question.message, 'Revert this turn and the turn after it?');
    assert.match(question.detail ?? '', /Files changed since the model edited them are left as they are/);
    assert.equal(summary.severity, 'information');
    assert.equal(summary.message, 'Turn reverted: 2 files restored.');
    assert.equal(summary.detail, 'Restored src/app.py\nRestored docs/new.md');
  });

  test('declining changes nothing', async () => {
    const reverts = revertingServer(['rename it']);
    await run(CommandIds.revertTurn, { chatId: 'c1', turn: 0, prompt: 'rename it' });
    assert.deepEqual(reverts, []);
    assert.equal(user.messages.length, 1);
  });

  test('the turn is found by its prompt after an earlier turn was reverted; a reverted one is said to be gone', async () => {
    const reverts = revertingServer(['rename it']);
    user.answerMessage = (m) => (m.modal ? 'Revert' : undefined);
    await run(CommandIds.revertTurn, { chatId: 'c1', turn: 2, prompt: 'rename it' });
    await run(CommandIds.revertTurn, { chatId: 'c1', turn: 1, prompt: 'a reverted turn' });
    assert.deepEqual(reverts, [{ chatId: 'c1', turn: 0 }]);
    assert.match(user.messages.at(-1)?.message ?? '', /no longer in the chat: it was reverted already/);
  });

  test('files left alone and commands not undone make it a warning that lists them', async () => {
    revertingServer(['test it'], {
      restored: ['a.txt'],
      skipped: [{ path: 'notes.txt', reason: "changed since the model's edit (by you or another program); left as it is" }],
      commandsNotUndone: ['npm test'],
    });
    user.answerMessage = (m) => (m.modal ? 'Revert' : undefined);
    await run(CommandIds.revertTurn, { chatId: 'c1', turn: 0, prompt: 'test it' });
    const summary = user.messages.at(-1)!;
    assert.equal(summary.severity, 'warning');
    assert.equal(summary.message, 'Turn reverted: 1 file restored, 1 left as they are; the commands it ran are not undone.');
    assert.equal(
      summary.detail,
      "Restored a.txt\nLeft notes.txt: changed since the model's edit (by you or another program); left as it is\n" +
        'Not undone (what these commands did stays):\n  npm test',
    );
  });
});
