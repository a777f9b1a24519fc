/**
 * Asks the user before the model changes a file (a modal dialog with the file, the diff
 * and three answers) or runs a command (the exact command). Closing the dialog denies.
 */
import * as vscode from 'vscode';
import type { PermissionPrompt } from '../core/permissionBroker';
import type { PermissionDecision, PermissionRequestParams } from '../core/protocol';

export const ALLOW = 'Allow';
export const ALWAYS_ALLOW = 'Always allow (this session)';
export const DENY = 'Deny';

/** A dialog is no place for a long diff; the rest is summarised. */
const RUN_COMMAND = 'run_command';
const MAX_DIFF_LINES = 60;

export function createPermissionPrompt(): PermissionPrompt {
  return async (request, token) => {
    const items: vscode.MessageItem[] = [{ title: ALLOW }, { title: ALWAYS_ALLOW }, { title: DENY, isCloseAffordance: true }];
    const choice = await vscode.window.showWarningMessage(
      request.name === RUN_COMMAND ? 'Ollama wants to run a command in your workspace' : `Ollama wants to change your workspace: ${request.title}`,
      { modal: true, detail: dialogDetail(request) },
      ...items,
    );
    // VS Code cannot close a modal from code; if the daemon withdrew the question (the
    // turn was stopped) the answer no longer matters.
    if (token.isCancellationRequested) return 'deny';
    return decisionFor(choice?.title);
  };
}

export function decisionFor(title: string | undefined): PermissionDecision {
  if (title === ALLOW) return 'allow';
  if (title === ALWAYS_ALLOW) return 'allow_always';
  return 'deny';
}

export function dialogDetail(request: PermissionRequestParams): string {
  if (request.name === RUN_COMMAND) {
    return `$ ${request.title}\n\n"${ALWAYS_ALLOW}" stops asking for this exact command until ollama-chatd restarts.`;
  }
  const always = `"${ALWAYS_ALLOW}" stops asking for ${request.name} until ollama-chatd restarts.`;
  if (request.diff === '') return `The file would not change.\n\n${always}`;
  const lines = request.diff.replace(/\n$/, '').split('\n');
  const shown = lines.slice(0, MAX_DIFF_LINES).join('\n');
  const rest = lines.length > MAX_DIFF_LINES ? `\n… ${lines.length - MAX_DIFF_LINES} more lines of diff` : '';
  return `${shown}${rest}\n\n${always}`;
}
