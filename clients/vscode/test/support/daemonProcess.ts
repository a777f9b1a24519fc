/**
 * A real `ollama-chatd serve` process with a vscode-jsonrpc connection to it: a minimal
 * language client doing what VS Code's does (initialize with the process id and the
 * applyEdit capability, apply the daemon's edits, shutdown/exit).
 */
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type { InitializationOptions } from '../../src/core/protocol';
import { PYTHON } from './paths';
import { collectStderr, spawnTracked, waitForExit } from './processes';
import { makeTempDir, TEST_DATA_HOME } from './tempDirs';
import { applyWorkspaceEditOnDisk } from './workspaceEditOnDisk';

export interface DaemonOptions {
  initializationOptions?: InitializationOptions;
  /** The workspace folder; a fresh temporary folder by default. */
  workspace?: string;
  /** Declare `workspace.applyEdit` (as VS Code's client does). Default true. */
  applyEdit?: boolean;
  command?: string;
  args?: string[];
}

export class DaemonProcess {
  /** Every workspace/applyEdit the daemon sent, in order. */
  readonly appliedEdits: any[] = [];

  private constructor(
    readonly child: ChildProcess,
    readonly connection: MessageConnection,
    readonly workspace: string,
    readonly stderr: () => string,
  ) {}

  static async start(options: DaemonOptions = {}): Promise<DaemonProcess> {
    const workspace = options.workspace ?? makeTempDir('ollama-chat-ws-');
    const child = spawnTracked(options.command ?? PYTHON, options.args ?? ['-m', 'ollama_chatd', 'serve'], {
      cwd: workspace,
      env: testEnvironment(process.env),
    });
    const stderr = collectStderr(child);
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    const daemon = new DaemonProcess(child, connection, workspace, stderr);
    connection.onRequest('workspace/applyEdit', (params: any) => {
      daemon.appliedEdits.push(params);
      applyWorkspaceEditOnDisk(params.edit);
      return { applied: true };
    });
    connection.listen();
    const applyEdit = options.applyEdit ?? true;
    await connection.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'ollama-chat-tests' },
      rootUri: pathToFileURL(workspace).href,
      workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: path.basename(workspace) }],
      capabilities: {
        general: { positionEncodings: ['utf-16'] },
        workspace: applyEdit
          ? { applyEdit: true, workspaceEdit: { documentChanges: true, resourceOperations: ['create', 'rename', 'delete'] } }
          : {},
      },
      initializationOptions: options.initializationOptions ?? {},
    });
    await connection.sendNotification('initialized', {});
    return daemon;
  }

  /** The LSP goodbye; the process must then exit by itself. */
  async stop(): Promise<void> {
    try {
      await withTimeout(this.connection.sendRequest('shutdown'), 3000);
      await this.connection.sendNotification('exit');
    } catch {
      // already gone: nothing to say goodbye to
    }
    await waitForExit(this.child, 3000);
    this.connection.dispose();
  }
}

/** A user's OLLAMA_HOST must not redirect the tests away from the fake, nor their chats mix with the tests'. */
function testEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy: NodeJS.ProcessEnv = { ...env, XDG_DATA_HOME: TEST_DATA_HOME };
  delete copy.OLLAMA_HOST;
  delete copy.OLLAMA_CHATD_MODEL;
  return copy;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);
}
