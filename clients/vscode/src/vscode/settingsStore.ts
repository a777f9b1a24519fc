/** The `ollamaChat.*` settings, read from VS Code, and the reactions to their changes. */
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../core/commandIds';
import { SETTINGS_NEEDING_RESTART, type Settings } from '../core/settings';

/**
 * Every setting is declared with `"scope": "window"`, the scope VS Code reads from User
 * settings in local and remote windows alike (`machine` settings are read only from the
 * remote's Machine settings there). A repository's `.vscode/settings.json` must not choose
 * the programs that run, where the workspace's files are sent, or which changes skip the
 * approval: all but the model are read from User settings only.
 */
export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  const autoApprove = userValue(config, 'autoApprove');
  const mcpServers = userValue(config, 'mcpServers');
  return {
    serverCommand: stringOr(userValue(config, 'serverCommand')),
    ollamaHost: stringOr(userValue(config, 'ollamaHost')),
    model: stringOr(config.get('model')),
    autoApprove: Array.isArray(autoApprove) ? autoApprove.filter((t): t is string => typeof t === 'string') : [],
    mcpServers: isPlainObject(mcpServers) ? mcpServers : {},
  };
}

/** Saves the model where the user's current choice comes from (workspace or user settings). */
export async function saveModel(model: string): Promise<void> {
  const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  const inspected = config.inspect<string>('model');
  const target =
    inspected?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
    : inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  await config.update('model', model, target);
}

export interface SettingsReactions {
  /** A setting read only at `initialize` changed. */
  onRestartNeeded(): void;
  onModelChanged(): void;
}

export function watchSettings(reactions: SettingsReactions): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration((event) => {
    const affects = (key: string) => event.affectsConfiguration(`${SETTINGS_SECTION}.${key}`);
    if (SETTINGS_NEEDING_RESTART.some(affects)) reactions.onRestartNeeded();
    if (affects('model')) reactions.onModelChanged();
  });
}

function userValue(config: vscode.WorkspaceConfiguration, key: string): unknown {
  return config.inspect(key)?.globalValue;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOr(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
