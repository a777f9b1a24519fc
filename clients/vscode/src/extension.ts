/**
 * Entry point: wires the daemon's lifecycle, the `@ollama` participant, the language-model
 * provider, the commands, the status bar and the settings together. Activated once VS Code
 * has started (`onStartupFinished`); nothing here waits on the daemon before returning, so
 * activation never holds up VS Code.
 */
import * as vscode from 'vscode';
import { PARTICIPANT_ID } from './core/commandIds';
import { explainFailure } from './core/explainFailure';
import { LM_VENDOR } from './core/modelCall';
import { PickerChoice } from './core/pickerChoice';
import { ServerManager } from './core/serverManager';
import { registerCommands } from './vscode/commands';
import { createLanguageClientLauncher } from './vscode/languageClientLauncher';
import { createModelProvider, type ModelListing } from './vscode/modelProvider';
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
  const pickerChoice = new PickerChoice();

  const participant = vscode.chat.createChatParticipant(
    PARTICIPANT_ID,
    createChatRequestHandler({
      acquireServer: () => manager.acquire(),
      settings: readSettings,
      workspaceFolders: () => (vscode.workspace.workspaceFolders ?? []).map((f) => ({ name: f.name, fsPath: f.uri.fsPath })),
      observeTurn: (outcome) => statusBar.observeTurn(outcome),
      chooseModel: (picked) => {
        const decision = pickerChoice.decide(picked?.vendor === LM_VENDOR ? picked.id : undefined, readSettings().model.trim());
        if (decision.adoptPicker) void saveModel(decision.model);
        return decision.model;
      },
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
    if (manager.isActive) void manager.restart().then(() => refreshModels(manager, statusBar));
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

  const firstListing = once(explainFailedListing);
  context.subscriptions.push(
    vscode.lm.registerLanguageModelChatProvider(
      LM_VENDOR,
      createModelProvider({
        acquireServer: () => manager.acquire(),
        configuredModel: () => readSettings().model,
        observeModels: (outcome) => {
          if (outcome.kind !== 'unavailable') statusBar.observeModels(outcome);
          firstListing(outcome);
        },
      }),
    ),
  );
  // VS Code asks a provider for its models only when something needs them; without this,
  // the first @ollama message finds no language model and fails. The daemon starts here.
  void vscode.lm.selectChatModels({ vendor: LM_VENDOR });
}

export function deactivate(): Promise<void> | undefined {
  // VS Code waits for this promise: the daemon gets `shutdown`/`exit` and is gone with the window.
  return server?.dispose();
}

/** When the daemon or Ollama cannot be used, one notification says how to fix it. */
function explainFailedListing(outcome: ModelListing): void {
  if (outcome.kind === 'unavailable') {
    void showExplanation(outcome.explanation);
  } else if (outcome.kind === 'failed' && outcome.failure.kind === 'ollama_unreachable') {
    void showExplanation(explainFailure(outcome.failure), 'warning');
  }
}

function once<T>(run: (value: T) => unknown): (value: T) => void {
  let done = false;
  return (value) => {
    if (!done) run(value);
    done = true;
  };
}

/** Asks the restarted daemon for the models, so the status bar knows whether Ollama answers. */
async function refreshModels(manager: ServerManager, statusBar: StatusBar): Promise<void> {
  const acquired = await manager.acquire();
  if (acquired.kind === 'ready') statusBar.observeModels(await acquired.chat.listModels());
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
