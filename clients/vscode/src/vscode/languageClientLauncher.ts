/**
 * Starts `ollama-chatd serve` as a language client. This is the only module that imports
 * vscode-languageclient: it subclasses `vscode` classes when it loads, so nothing that
 * runs under the tests' stub of `vscode` may import it.
 *
 * The language client does what the issue asks of the editor side for free: it sends the
 * window's process id (the daemon exits when the extension host dies), syncs open
 * buffers, declares `workspace.applyEdit` and applies the daemon's edits to the buffers
 * (undoable), and sends `$/cancelRequest` when a request's token is cancelled.
 *
 * No `transport` is given: with `TransportKind.stdio` the client appends `--stdio` to the
 * command (the daemon accepts it, but older daemons exit on it), and stdio is the default.
 */
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
} from 'vscode-languageclient/node';
import type { Launcher } from '../core/serverManager';

/** How long `stop` waits for `shutdown` before the client kills the process. */
const STOP_TIMEOUT_MS = 2000;

export function createLanguageClientLauncher(output: vscode.LogOutputChannel): Launcher {
  return async (command, initializationOptions, onUnexpectedExit) => {
    const client = new QuietLanguageClient(
      'ollamaChat',
      'ollama-chatd',
      { command: command.command, args: command.args },
      {
        // Every file buffer is synced, so the model reads what the user sees, unsaved edits included.
        documentSelector: [{ scheme: 'file' }],
        outputChannel: output,
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        initializationOptions,
        // The extension explains start failures itself and restarts on the next message.
        initializationFailedHandler: () => false,
        errorHandler: {
          error: () => ({ action: ErrorAction.Continue, handled: true }),
          closed: () => {
            onUnexpectedExit();
            return { action: CloseAction.DoNotRestart, handled: true };
          },
        },
      },
    );
    try {
      await client.start();
    } catch (error) {
      await client.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
      throw error;
    }
    return {
      connection: client,
      stop: () => client.dispose(STOP_TIMEOUT_MS),
    };
  };
}

/**
 * The client forces an error toast of its own ("couldn't create connection to server") when
 * the daemon fails to start or its connection breaks; the extension already explains every
 * failure once, with its fix, so the client's errors go to the log only.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}
