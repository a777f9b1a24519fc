/**
 * The status bar item: which model the next message uses and whether Ollama answers.
 * Reachability is learnt from what the daemon says anyway (model lists, turns), so the
 * item never polls.
 */
import * as vscode from 'vscode';
import type { ModelsOutcome, TurnOutcome } from '../core/chatClient';
import { CommandIds } from '../core/commandIds';
import type { DaemonFailure } from '../core/daemonFailure';
import { explainFailure, servedByOpenAI } from '../core/explainFailure';
import { asPlainText, type Explanation } from '../core/explanation';

export type Reachability =
  | { kind: 'unknown' }
  | { kind: 'reachable' }
  | { kind: 'unreachable'; server: string; explanation: Explanation }
  | { kind: 'server_unavailable'; explanation: Explanation };

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private reachability: Reachability = { kind: 'unknown' };

  constructor(private readonly currentModel: () => string) {
    this.item = vscode.window.createStatusBarItem('ollamaChat.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Ollama Chat';
    this.item.command = CommandIds.selectModel;
    this.render();
    this.item.show();
  }

  get state(): Reachability {
    return this.reachability;
  }

  /** Re-reads the model setting. */
  refresh(): void {
    this.render();
  }

  set(reachability: Reachability): void {
    this.reachability = reachability;
    this.render();
  }

  observeTurn(outcome: TurnOutcome): void {
    if (outcome.kind === 'finished') this.set({ kind: 'reachable' });
    else if (outcome.kind === 'failed') this.observeFailure(outcome.failure);
  }

  observeModels(outcome: ModelsOutcome): void {
    if (outcome.kind === 'models') this.set({ kind: 'reachable' });
    else if (outcome.kind === 'failed') this.observeFailure(outcome.failure);
  }

  dispose(): void {
    this.item.dispose();
  }

  private observeFailure(failure: DaemonFailure): void {
    if (failure.kind === 'ollama_unreachable') {
      const server = servedByOpenAI(failure) ? 'Model server' : 'Ollama';
      this.set({ kind: 'unreachable', server, explanation: explainFailure(failure) });
    } else if (failure.kind === 'server_not_running') this.set({ kind: 'server_unavailable', explanation: explainFailure(failure) });
    else if (failure.kind === 'model_not_found' || failure.kind === 'upstream_error') this.set({ kind: 'reachable' });
  }

  private render(): void {
    const model = this.currentModel().trim() || 'no model';
    const r = this.reachability;
    const problem = r.kind === 'unreachable' || r.kind === 'server_unavailable';
    this.item.text =
      r.kind === 'unreachable' ? `$(warning) ${r.server} unreachable · ${model}`
      : r.kind === 'server_unavailable' ? '$(warning) ollama-chatd not running'
      : `$(comment-discussion) ${model}`;
    this.item.tooltip =
      problem ? `${asPlainText(r.explanation.markdown)}\n\nClick to choose a model.`
      : r.kind === 'reachable' ? `Ollama is reachable. @ollama uses ${model}. Click to choose another model.`
      : `@ollama uses ${model}. Click to choose another model.`;
    this.item.backgroundColor = problem ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }
}
