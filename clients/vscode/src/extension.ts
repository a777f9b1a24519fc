/**
 * Entry point: wires the daemon's lifecycle, the `@ollama` participant, the commands, the
 * status bar and the settings together. Nothing here waits on the daemon before
 * returning, so activation never holds up VS Code.
 */
import * as vscode from 'vscode';
import { PARTICIPANT_ID } from './core/commandIds';
import { explainFailure } from './core/explainFailure';
import { ServerManager } from './core/serverManager';
import { resolveToolPath } from './core/workspacePaths';
import { registerCommands } from './vscode/commands';
import { createLanguageClientLauncher } from './vscode/languageClientLauncher';
import { showExplanation } from './vscode/notifications';
import { createChatRequestHandler } from './vscode/participant';
import { createPermissionPrompt } from './vscode/permissionPrompt';
import { readSettings, saveModel, watchSettings } from './vscode/settingsStore';
import { StatusBar } from './vscode/statusBar';

let server: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): void {
  // A log channel: the language client writes the daemon's stderr here, with timestamps.
  const output = vscode.window.createOutputChannel('Ollama Chat', { log: true });
  const statusBar = new StatusBar(() => readSettings().model);
  const log = (line: string) => output.info(line);

  server = new ServerManager({
    launch: createLanguageClientLauncher(output),
    settings: readSettings,
    askPermission: createPermissionPrompt(),
    log,
    onUnavailable: (explanation) => statusBar.set({ kind: 'server_unavailable', explanation }),
    onExited: () => statusBar.set({ kind: 'unknown' }),
  });
  const manager = server;

  const participant = vscode.chat.createChatParticipant(
    PARTICIPANT_ID,
    createChatRequestHandler({
      acquireServer: () => manager.acquire(),
      settings: readSettings,
      resolveToolPath: (toolPath) => {
        const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => ({ name: f.name, fsPath: f.uri.fsPath }));
        const file = resolveToolPath(toolPath, folders);
        return file === undefined ? undefined : vscode.Uri.file(file);
      },
      observeTurn: (outcome) => statusBar.observeTurn(outcome),
    }),
  );
  participant.iconPath = new vscode.ThemeIcon('hubot');

  const commandDeps = {
    acquireServer: () => manager.acquire(),
    restartServer: () => manager.restart(),
    currentModel: () => readSettings().model,
    saveModel,
    showLog: () => output.show(true),
    observeModels: (outcome: Parameters<StatusBar['observeModels']>[0]) => statusBar.observeModels(outcome),
  };

  context.subscriptions.push(
    output,
    statusBar,
    participant,
    ...registerCommands(commandDeps),
    watchSettings({
      onRestartNeeded: () => {
        // Only a running daemon needs the new values now; a stopped one reads them when it starts.
        if (manager.isRunning) void manager.restart().then(() => probeOllama(manager, statusBar, false));
      },
      onModelChanged: () => statusBar.refresh(),
    }),
  );

  void probeOllama(manager, statusBar, true);
}

export function deactivate(): Promise<void> | undefined {
  // VS Code waits for this promise: the daemon gets `shutdown`/`exit` and is gone with the window.
  return server?.stop();
}

/**
 * Starts the daemon and asks it for the models, so the status bar knows early whether
 * Ollama answers; when it does not, one notification says how to fix it.
 */
async function probeOllama(manager: ServerManager, statusBar: StatusBar, notify: boolean): Promise<void> {
  const acquired = await manager.acquire();
  if (acquired.kind === 'unavailable') {
    if (notify) void showExplanation(acquired.explanation);
    return;
  }
  const outcome = await acquired.chat.listModels();
  statusBar.observeModels(outcome);
  if (notify && outcome.kind === 'failed' && outcome.failure.kind === 'ollama_unreachable') {
    void showExplanation(explainFailure(outcome.failure), 'warning');
  }
}
