/**
 * Entry point: wires the daemon's lifecycle, the `@ollama` participant, the commands, the
 * status bar and the settings together. Nothing here waits on the daemon before
 * returning, so activation never holds up VS Code.
 */
import * as vscode from 'vscode';
import { PARTICIPANT_ID } from './core/commandIds';
import { explainFailure } from './core/explainFailure';
import { ServerManager } from './core/serverManager';
import { registerCommands } from './vscode/commands';
import { createLanguageClientLauncher } from './vscode/languageClientLauncher';
import { showExplanation } from './vscode/notifications';
import { createChatRequestHandler } from './vscode/participant';
import { createPermissionPrompt } from './vscode/permissionPrompt';
import { readSettings, saveModel, watchSettings } from './vscode/settingsStore';
import { StatusBar } from './vscode/statusBar';

let server: ServerManager | undefined;

const RESTART_DELAY_MS = 400;

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
      workspaceFolders: () => (vscode.workspace.workspaceFolders ?? []).map((f) => ({ name: f.name, fsPath: f.uri.fsPath })),
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

  // Typing an address in the Settings editor changes it several times: restart once.
  const restartSoon = debounce(RESTART_DELAY_MS, () => {
    // Only a live daemon needs the new values now; a stopped one reads them when it starts.
    if (manager.isActive) void manager.restart().then(() => probeOllama(manager, statusBar, false));
  });

  context.subscriptions.push(
    restartSoon,
    output,
    statusBar,
    participant,
    ...registerCommands(commandDeps),
    watchSettings({
      onRestartNeeded: restartSoon,
      onModelChanged: () => statusBar.refresh(),
    }),
  );

  void probeOllama(manager, statusBar, true);
}

export function deactivate(): Promise<void> | undefined {
  // VS Code waits for this promise: the daemon gets `shutdown`/`exit` and is gone with the window.
  return server?.dispose();
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

/** `run` once `ms` after the last call; its timer is cleared with the extension. */
function debounce(ms: number, run: () => void): (() => void) & vscode.Disposable {
  let timer: NodeJS.Timeout | undefined;
  return Object.assign(
    () => {
      clearTimeout(timer);
      timer = setTimeout(run, ms);
    },
    { dispose: () => clearTimeout(timer) },
  );
}
