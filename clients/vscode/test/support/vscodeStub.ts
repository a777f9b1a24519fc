/**
 * A small stand-in for the `vscode` module: just the API the extension uses, recording
 * what the user would see (messages, pickers, status bar, clipboard) and answering
 * prompts as a test scripts them. Importing this file installs it for `require('vscode')`.
 */
import Module from 'node:module';
import * as path from 'node:path';
import { CancellationTokenSource, Emitter } from 'vscode-jsonrpc/node';

// ---------------------------------------------------------------- basic types

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(fsPath: string): Uri {
    return new Uri('file', path.resolve(fsPath));
  }
  get path(): string {
    return this.fsPath;
  }
  toString(): string {
    return `${this.scheme}://${this.fsPath}`;
  }
}

export class ThemeIcon {
  constructor(readonly id: string) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class Disposable {
  constructor(private readonly callOnDispose: () => void) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export const StatusBarAlignment = { Left: 1, Right: 2 } as const;
export const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 } as const;

// ---------------------------------------------------------------- what the user sees

export interface ShownMessage {
  severity: 'error' | 'warning' | 'information';
  message: string;
  modal: boolean;
  detail?: string;
  items: string[];
}

export interface StubStatusBarItem {
  id: string;
  text: string;
  tooltip?: string;
  command?: string;
  name?: string;
  backgroundColor?: ThemeColor;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

type MessageAnswer = (message: ShownMessage) => string | undefined;
type QuickPickAnswer = (items: readonly any[], options: any) => any;

class UserSimulation {
  readonly messages: ShownMessage[] = [];
  readonly statusBarItems: StubStatusBarItem[] = [];
  readonly clipboard: string[] = [];
  readonly quickPicks: { items: readonly any[]; options: any }[] = [];
  readonly inputBoxes: any[] = [];
  readonly outputLines: string[] = [];
  readonly executedCommands: { command: string; args: unknown[] }[] = [];
  outputShown = 0;
  answerMessage: MessageAnswer = () => undefined;
  answerQuickPick: QuickPickAnswer = () => undefined;
  answerInputBox: (options: any) => string | undefined = () => undefined;

  reset(): void {
    this.messages.length = 0;
    this.clipboard.length = 0;
    this.quickPicks.length = 0;
    this.inputBoxes.length = 0;
    this.executedCommands.length = 0;
    this.outputShown = 0;
    this.answerMessage = () => undefined;
    this.answerQuickPick = () => undefined;
    this.answerInputBox = () => undefined;
  }
}

export const user = new UserSimulation();

function showMessage(severity: ShownMessage['severity']) {
  return async (message: string, ...rest: any[]): Promise<any> => {
    const options = rest.length > 0 && typeof rest[0] === 'object' && rest[0] !== null && !('title' in rest[0]) ? rest.shift() : {};
    const items = rest;
    const shown: ShownMessage = {
      severity,
      message,
      modal: Boolean(options.modal),
      detail: options.detail,
      items: items.map((i: any) => (typeof i === 'string' ? i : i.title)),
    };
    user.messages.push(shown);
    const answer = user.answerMessage(shown);
    return items.find((i: any) => (typeof i === 'string' ? i : i.title) === answer);
  };
}

// ---------------------------------------------------------------- settings

const settingsEmitter = new Emitter<{ affectsConfiguration(section: string): boolean }>();
const settingsStore = new Map<string, { value: unknown; target: number }>();

export const settings = {
  set(key: string, value: unknown, target: number = ConfigurationTarget.Global): void {
    settingsStore.set(key, { value, target });
    settingsEmitter.fire({ affectsConfiguration: (section) => key === section || key.startsWith(`${section}.`) });
  },
  get(key: string): unknown {
    return settingsStore.get(key)?.value;
  },
  clear(): void {
    settingsStore.clear();
  },
};

function getConfiguration(section: string) {
  const full = (key: string) => `${section}.${key}`;
  return {
    get<T>(key: string, fallback?: T): T | undefined {
      return (settingsStore.has(full(key)) ? settingsStore.get(full(key))!.value : fallback) as T | undefined;
    },
    inspect(key: string) {
      const entry = settingsStore.get(full(key));
      return {
        key: full(key),
        globalValue: entry?.target === ConfigurationTarget.Global ? entry.value : undefined,
        workspaceValue: entry?.target === ConfigurationTarget.Workspace ? entry.value : undefined,
        workspaceFolderValue: entry?.target === ConfigurationTarget.WorkspaceFolder ? entry.value : undefined,
      };
    },
    async update(key: string, value: unknown, target: number): Promise<void> {
      settings.set(full(key), value, target);
    },
  };
}

// ---------------------------------------------------------------- commands, chat

const registeredCommands = new Map<string, (...args: any[]) => unknown>();

export const participants: { id: string; handler: (...args: any[]) => any; iconPath?: unknown }[] = [];

/** Language-model providers, by vendor (`vscode.lm.registerLanguageModelChatProvider`). */
export const modelProviders = new Map<string, any>();

class LanguageModelTextPart {
  constructor(readonly value: string) {}
}

class LanguageModelThinkingPart {
  constructor(readonly value: string) {}
}

class LanguageModelToolCallPart {
  constructor(readonly callId: string, readonly name: string, readonly input: object) {}
}

class LanguageModelToolResultPart {
  constructor(readonly callId: string, readonly content: unknown[]) {}
}

const LanguageModelChatMessageRole = { User: 1, Assistant: 2 } as const;

// ---------------------------------------------------------------- the module

export const vscodeStub = {
  version: '1.91.0',
  Uri,
  ThemeIcon,
  ThemeColor,
  Disposable,
  StatusBarAlignment,
  ConfigurationTarget,
  CancellationTokenSource,
  EventEmitter: Emitter,
  LanguageModelTextPart,
  LanguageModelThinkingPart,
  LanguageModelToolCallPart,
  LanguageModelToolResultPart,
  LanguageModelChatMessageRole,
  window: {
    showErrorMessage: showMessage('error'),
    showWarningMessage: showMessage('warning'),
    showInformationMessage: showMessage('information'),
    async showQuickPick(items: readonly any[], options: any) {
      user.quickPicks.push({ items, options });
      return user.answerQuickPick(items, options);
    },
    async showInputBox(options: any) {
      user.inputBoxes.push(options);
      return user.answerInputBox(options);
    },
    createStatusBarItem(id: string): StubStatusBarItem {
      const item: StubStatusBarItem = {
        id,
        text: '',
        visible: false,
        show() {
          item.visible = true;
        },
        hide() {
          item.visible = false;
        },
        dispose() {
          item.visible = false;
        },
      };
      user.statusBarItems.push(item);
      return item;
    },
    createOutputChannel(name: string) {
      const line = (text: string) => user.outputLines.push(text);
      return {
        name,
        append: line,
        appendLine: line,
        info: line,
        warn: line,
        error: (text: string | Error) => line(String(text)),
        debug: line,
        trace: line,
        show: () => {
          user.outputShown++;
        },
        dispose: () => undefined,
      };
    },
  },
  commands: {
    registerCommand(id: string, run: (...args: any[]) => unknown) {
      registeredCommands.set(id, run);
      return new Disposable(() => registeredCommands.delete(id));
    },
    async executeCommand(id: string, ...args: unknown[]) {
      user.executedCommands.push({ command: id, args });
      return registeredCommands.get(id)?.(...args);
    },
  },
  workspace: {
    workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
    getConfiguration,
    onDidChangeConfiguration: settingsEmitter.event,
  },
  env: {
    appName: 'Visual Studio Code',
    clipboard: {
      async writeText(text: string) {
        user.clipboard.push(text);
      },
    },
  },
  chat: {
    createChatParticipant(id: string, handler: (...args: any[]) => any) {
      const participant = { id, handler, iconPath: undefined as unknown, dispose: () => undefined };
      participants.push(participant);
      return participant;
    },
  },
  lm: {
    registerLanguageModelChatProvider(vendor: string, provider: unknown) {
      modelProviders.set(vendor, provider);
      return new Disposable(() => modelProviders.delete(vendor));
    },
    /** Like VS Code: asks the vendor's provider for its models (silently). */
    async selectChatModels(selector: { vendor?: string }) {
      const provider = selector.vendor === undefined ? undefined : modelProviders.get(selector.vendor);
      const models = (await provider?.provideLanguageModelChatInformation({ silent: true }, new CancellationTokenSource().token)) ?? [];
      return models.map((m: { id: string }) => ({ ...m, vendor: selector.vendor }));
    },
  },
};

export function setWorkspaceFolder(folder: string | undefined): void {
  vscodeStub.workspace.workspaceFolders = folder ? [{ uri: Uri.file(folder), name: path.basename(folder), index: 0 }] : undefined;
}

// ---------------------------------------------------------------- the hook

const extraModules = new Map<string, unknown>([['vscode', vscodeStub]]);

/** Also stands in for other modules (the tests replace vscode-languageclient/node). */
export function stubModule(request: string, exports: unknown): void {
  extraModules.set(request, exports);
}

const moduleInternals = Module as unknown as { _load(request: string, parent: unknown, isMain: boolean): unknown };
const originalLoad = moduleInternals._load;
moduleInternals._load = function (request: string, parent: unknown, isMain: boolean) {
  if (extraModules.has(request)) return extraModules.get(request);
  return originalLoad.call(this, request, parent, isMain);
};
