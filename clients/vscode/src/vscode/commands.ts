/** The commands: Select Model, Show Server Log, Restart Server, the fix buttons' helpers and Revert this turn. */
import * as vscode from 'vscode';
import type { ModelsOutcome } from '../core/chatClient';
import { CommandIds, SETTINGS_SECTION } from '../core/commandIds';
import { explainFailure } from '../core/explainFailure';
import { modelChoices, sameModel } from '../core/modelDescriptions';
import type { ServerAcquisition } from '../core/serverManager';
import { confirmation, findTurn, isRevertTarget, revertSummary, turnPrompts } from '../core/turnRevert';
import { showExplanation } from './notifications';

export interface CommandDeps {
  acquireServer(): Promise<ServerAcquisition>;
  restartServer(): Promise<ServerAcquisition>;
  currentModel(): string;
  saveModel(model: string): Promise<void>;
  showLog(): void;
  /** Told every model list result (the status bar learns reachability from it). */
  observeModels?(outcome: ModelsOutcome): void;
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(CommandIds.selectModel, () => selectModel(deps)),
    vscode.commands.registerCommand(CommandIds.showServerLog, () => deps.showLog()),
    vscode.commands.registerCommand(CommandIds.restartServer, () => restartServer(deps)),
    vscode.commands.registerCommand(CommandIds.copyToClipboard, (text: unknown) => copyToClipboard(text)),
    vscode.commands.registerCommand(CommandIds.revertTurn, (target: unknown) => revertTurn(deps, target)),
    vscode.commands.registerCommand(CommandIds.openSettings, (settingId: unknown) =>
      vscode.commands.executeCommand('workbench.action.openSettings', typeof settingId === 'string' ? settingId : SETTINGS_SECTION),
    ),
  ];
}

export async function selectModel(deps: CommandDeps): Promise<void> {
  const server = await deps.acquireServer();
  if (server.kind === 'unavailable') return showExplanation(server.explanation);
  const outcome = await server.chat.listModels(true);
  deps.observeModels?.(outcome);
  if (outcome.kind === 'failed') return showExplanation(explainFailure(outcome.failure));
  const model = outcome.kind === 'unsupported' ? await askModelName(deps) : await pickModel(deps, outcome.models);
  if (model !== undefined && !sameModel(model, deps.currentModel())) await deps.saveModel(model);
}

async function pickModel(deps: CommandDeps, models: Parameters<typeof modelChoices>[0]): Promise<string | undefined> {
  const choices = modelChoices(models);
  if (choices.length === 0) {
    await showExplanation({
      markdown: 'Ollama has no chat models yet. Download one in a terminal, for example `ollama pull qwen3:8b`, then run **Ollama: Select Model** again.',
      actions: [{ title: 'Copy "ollama pull qwen3:8b"', command: CommandIds.copyToClipboard, arguments: ['ollama pull qwen3:8b'] }],
    }, 'warning');
    return undefined;
  }
  const current = deps.currentModel();
  const items = choices.map((c) => ({
    label: sameModel(c.name, current) ? `$(check) ${c.name}` : c.name,
    description: c.description,
    detail: c.detail,
    model: c.name,
  }));
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Ollama: Select Model',
    placeHolder: current ? `Current: ${current}` : 'Choose the model @ollama chats with',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked?.model;
}

/** Older daemons cannot list models: let the user type a name. */
async function askModelName(deps: CommandDeps): Promise<string | undefined> {
  const name = await vscode.window.showInputBox({
    title: 'Ollama: Select Model',
    prompt: 'The model name, as `ollama list` shows it (this ollama-chatd cannot list models).',
    value: deps.currentModel(),
    validateInput: (value) => (value.trim() === '' ? 'Type a model name, e.g. qwen3:8b' : undefined),
  });
  return name?.trim() || undefined;
}

export async function restartServer(deps: CommandDeps): Promise<void> {
  const server = await deps.restartServer();
  if (server.kind === 'unavailable') return showExplanation(server.explanation);
  const outcome = await server.chat.listModels();
  deps.observeModels?.(outcome);
  if (outcome.kind === 'failed') return showExplanation(explainFailure(outcome.failure), 'warning');
  void vscode.window.showInformationMessage('ollama-chatd restarted.');
}

/** "Revert this turn" under an answer: asks first, then reverts that turn and the later ones. */
export async function revertTurn(deps: CommandDeps, target: unknown): Promise<void> {
  if (!isRevertTarget(target)) return;
  const server = await deps.acquireServer();
  if (server.kind === 'unavailable') return showExplanation(server.explanation);
  const history = await server.chat.history(target.chatId);
  const prompts = history === undefined ? [] : turnPrompts(history);
  const turn = findTurn(prompts, target);
  if (turn === undefined) {
    void vscode.window.showWarningMessage('This turn is no longer in the chat: it was reverted already (or the chat was deleted).');
    return;
  }
  const question = confirmation(turn, prompts.length);
  const answer = await vscode.window.showWarningMessage(question.message, { modal: true, detail: question.detail }, 'Revert');
  if (answer !== 'Revert') return;
  const outcome = await server.chat.revert(target.chatId, turn);
  if (outcome.kind === 'failed') return showExplanation(explainFailure(outcome.failure));
  const summary = revertSummary(outcome.result);
  const show = summary.severity === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  void show(summary.message, { detail: summary.detail });
}

async function copyToClipboard(text: unknown): Promise<void> {
  if (typeof text !== 'string') return;
  await vscode.env.clipboard.writeText(text);
  void vscode.window.showInformationMessage(`Copied "${text}": paste it into a terminal.`);
}
