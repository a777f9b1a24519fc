/** Explanations as VS Code notifications whose buttons run the fix. */
import * as vscode from 'vscode';
import { asPlainText, type Explanation } from '../core/explanation';

export type Severity = 'error' | 'warning';

/** Resolves once the user picked a button (which then ran) or dismissed the message. */
export async function showExplanation(explanation: Explanation, severity: Severity = 'error'): Promise<void> {
  const show = severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
  const titles = explanation.actions.map((a) => a.title);
  const choice = await show(asPlainText(explanation.markdown), ...titles);
  const action = explanation.actions.find((a) => a.title === choice);
  if (action !== undefined) await vscode.commands.executeCommand(action.command, ...(action.arguments ?? []));
}
