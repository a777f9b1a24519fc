/**
 * Stands in for `vscode-languageclient/node` (which cannot load under the `vscode` stub):
 * a LanguageClient that runs the real daemon process through DaemonProcess, keeping the
 * parts of the real client's behaviour the extension relies on.
 */
import { ResponseError, type CancellationToken } from 'vscode-jsonrpc/node';
import { DaemonProcess } from './daemonProcess';
import { isAlive } from './processes';
import { vscodeStub } from './vscodeStub';

export const TransportKind = { stdio: 0, ipc: 1, pipe: 2, socket: 3 } as const;
export const CloseAction = { DoNotRestart: 1, Restart: 2 } as const;
export const ErrorAction = { Continue: 1, Shutdown: 2 } as const;
export const RevealOutputChannelOn = { Debug: 0, Info: 1, Warn: 2, Error: 3, Never: 4 } as const;

export class LanguageClient {
  static readonly instances: LanguageClient[] = [];
  daemon: DaemonProcess | undefined;
  private stopping = false;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly serverOptions: { command: string; args: string[] },
    readonly clientOptions: any,
  ) {
    LanguageClient.instances.push(this);
  }

  async start(): Promise<void> {
    const folder = vscodeStub.workspace.workspaceFolders?.[0]?.uri.fsPath;
    this.daemon = await DaemonProcess.start({
      command: this.serverOptions.command,
      args: this.serverOptions.args,
      initializationOptions: this.clientOptions.initializationOptions,
      workspace: folder,
    });
    this.daemon.child.once('exit', () => {
      if (!this.stopping) this.clientOptions.errorHandler.closed();
    });
  }

  sendRequest<R>(method: string, ...params: unknown[]): Promise<R> {
    // The pitfall the core avoids: an explicit undefined token goes out as positional params.
    if (params.length === 2 && params[1] === undefined) throw new Error(`explicit undefined token for ${method}`);
    const token = params[1] as CancellationToken | undefined;
    // Like the real client: an already-cancelled token rejects at once and sends nothing.
    if (token?.isCancellationRequested) return Promise.reject(new ResponseError(-32800, 'Request got cancelled'));
    return this.daemon!.connection.sendRequest<R>(method, ...params);
  }

  onNotification(method: string, handler: (params: any) => void) {
    return this.daemon!.connection.onNotification(method, handler);
  }

  onRequest(method: string, handler: (params: any, token: CancellationToken) => unknown) {
    return this.daemon!.connection.onRequest(method, handler as any);
  }

  get isProcessAlive(): boolean {
    return this.daemon !== undefined && isAlive(this.daemon.child);
  }

  async dispose(): Promise<void> {
    this.stopping = true;
    await this.daemon?.stop();
  }
}
