/**
 * The daemon's lifecycle: started on first use, restarted on demand or when a setting it
 * reads at `initialize` changes, stopped with the window. How a process is actually
 * launched is injected (the language client in VS Code, a stub in tests).
 */
import { ChatClient } from './chatClient';
import { newServerSessionId } from './chatSession';
import { toDaemonFailure } from './daemonFailure';
import { explainFailure } from './explainFailure';
import type { Explanation } from './explanation';
import type { PermissionPrompt } from './permissionBroker';
import type { InitializationOptions } from './protocol';
import type { RpcConnection } from './rpcConnection';
import { type Environment, resolveServerCommand } from './serverCommand';
import { initializationOptionsFrom, type Settings } from './settings';

export interface LaunchedServer {
  connection: RpcConnection;
  /** Asks the daemon to shut down and waits for it (killing it if it does not go). */
  stop(): Promise<void>;
}

export type Launcher = (
  command: { command: string; args: string[] },
  initializationOptions: InitializationOptions,
  /** Called when the process ends without being asked to. */
  onUnexpectedExit: () => void,
) => Promise<LaunchedServer>;

export type ServerAcquisition =
  | { kind: 'ready'; chat: ChatClient; serverSession: string }
  | { kind: 'unavailable'; explanation: Explanation };

export interface ServerManagerDeps {
  launch: Launcher;
  settings(): Settings;
  askPermission: PermissionPrompt;
  environment?(): Environment;
  log(line: string): void;
  /** Told when the daemon cannot be started, and when a running one exits on its own. */
  onUnavailable?(explanation: Explanation): void;
  onExited?(): void;
}

interface Running {
  server: LaunchedServer;
  chat: ChatClient;
  session: string;
}

export class ServerManager {
  private running: Running | undefined;
  private starting: Promise<ServerAcquisition> | undefined;
  private disposed = false;

  constructor(private readonly deps: ServerManagerDeps) {}

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Running, or starting with settings that may already be stale. */
  get isActive(): boolean {
    return this.running !== undefined || this.starting !== undefined;
  }

  /** The running daemon, starting it if needed; concurrent callers share one start. */
  acquire(): Promise<ServerAcquisition> {
    if (this.disposed) return Promise.resolve({ kind: 'unavailable', explanation: CLOSING });
    if (this.running !== undefined) return Promise.resolve(ready(this.running));
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async restart(): Promise<ServerAcquisition> {
    await this.stop();
    return this.acquire();
  }

  async stop(): Promise<void> {
    await this.starting;
    const running = this.running;
    this.running = undefined;
    if (running === undefined) return;
    running.chat.dispose();
    try {
      await running.server.stop();
    } catch (error) {
      this.deps.log(`Stopping ollama-chatd failed: ${(error as Error)?.message ?? error}`);
    }
  }

  /** Stops the daemon for good: the window is closing, so nothing may start another. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop();
  }

  private async start(): Promise<ServerAcquisition> {
    const settings = this.deps.settings();
    const command = resolveServerCommand(settings.serverCommand, this.deps.environment?.());
    if (command.kind === 'missing') {
      this.deps.log(`Cannot start ollama-chatd: "${command.program}" not found.`);
      return this.unavailable(command.explanation);
    }
    const session = newServerSessionId();
    try {
      this.deps.log(`Starting ${[command.command, ...command.args].join(' ')}`);
      const server = await this.deps.launch(
        { command: command.command, args: command.args },
        initializationOptionsFrom(settings),
        () => this.onExit(session),
      );
      this.running = { server, chat: new ChatClient(server.connection, this.deps.askPermission), session };
      return ready(this.running);
    } catch (error) {
      const failure = toDaemonFailure(error);
      this.deps.log(`ollama-chatd failed to start: ${failure.message}`);
      return this.unavailable(explainFailure(failure.kind === 'client_error' ? { ...failure, kind: 'server_not_running' } : failure));
    }
  }

  private unavailable(explanation: Explanation): ServerAcquisition {
    this.deps.onUnavailable?.(explanation);
    return { kind: 'unavailable', explanation };
  }

  private onExit(session: string): void {
    if (this.running?.session !== session) return; // an old process, or one we stopped
    this.deps.log('ollama-chatd exited; it will be started again on the next message.');
    const { chat, server } = this.running;
    this.running = undefined;
    chat.dispose();
    server.stop().catch(() => undefined); // releases the client's resources; the process is already gone
    this.deps.onExited?.();
  }
}

const CLOSING: Explanation = { markdown: 'VS Code is closing this window; ollama-chatd has been stopped.', actions: [] };

function ready(running: Running): ServerAcquisition {
  return { kind: 'ready', chat: running.chat, serverSession: running.session };
}
