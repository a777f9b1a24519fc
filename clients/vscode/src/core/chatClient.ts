/**
 * The protocol side of chatting: one handler per daemon notification, routed to the turn
 * of the right chat, and `chat/start` turned into an outcome that never throws.
 *
 * vscode-jsonrpc keeps one handler per method (a second `onNotification` for the same
 * method silently replaces the first), so the handlers are registered once here and each
 * turn only adds itself to the routing table while it runs.
 */
import type { CancellationToken, Disposable } from 'vscode-jsonrpc/node';
import { type DaemonFailure, isCancellation, isMethodNotFound, toDaemonFailure } from './daemonFailure';
import { registerPermissionHandler, type PermissionPrompt } from './permissionBroker';
import {
  ErrorCodes,
  Methods,
  type ChatHistoryResult,
  type ChatModelsResult,
  type ChatRevertResult,
  type ChatStartParams,
  type ChatStartResult,
  type ChatStatusParams,
  type ChatTokenParams,
  type ModelChatParams,
  type ModelChatResult,
  type ModelInfo,
  type ModelTokenParams,
  type TokenKind,
  type ToolCallParams,
} from './protocol';
import { type RpcConnection, sendRequest } from './rpcConnection';

/** What a running turn is told, in the order the daemon sent it. */
export interface TurnListener {
  onToken?(kind: TokenKind, text: string): void;
  onToolCall?(call: ToolCallParams): void;
  onStatus?(status: ChatStatusParams): void;
}

export type TurnOutcome =
  | { kind: 'finished'; result: ChatStartResult }
  /** Stopped through the request's cancellation token (the daemon answered -32800). */
  | { kind: 'cancelled' }
  | { kind: 'failed'; failure: DaemonFailure };

export type ModelsOutcome =
  | { kind: 'models'; models: ModelInfo[] }
  /** The daemon predates `chat/models`. */
  | { kind: 'unsupported' }
  | { kind: 'failed'; failure: DaemonFailure };

export type RevertOutcome = { kind: 'reverted'; result: ChatRevertResult } | { kind: 'failed'; failure: DaemonFailure };

export type CallOutcome =
  | { kind: 'finished'; result: ModelChatResult }
  | { kind: 'cancelled' }
  | { kind: 'failed'; failure: DaemonFailure };

export class ChatClient implements Disposable {
  private readonly turns = new Map<string, TurnListener>();
  private readonly calls = new Map<string, (kind: TokenKind, text: string) => void>();
  private readonly registrations: Disposable[];

  constructor(
    private readonly connection: RpcConnection,
    askPermission: PermissionPrompt,
  ) {
    this.registrations = [
      connection.onNotification(Methods.chatToken, (p: ChatTokenParams) =>
        this.notify(p.chatId, (l) => l.onToken?.(p.kind, p.text)),
      ),
      connection.onNotification(Methods.chatToolCall, (p: ToolCallParams) =>
        this.notify(p.chatId, (l) => l.onToolCall?.(p)),
      ),
      connection.onNotification(Methods.chatStatus, (p: ChatStatusParams) =>
        this.notify(p.chatId, (l) => l.onStatus?.(p)),
      ),
      connection.onNotification(Methods.modelToken, (p: ModelTokenParams) => this.calls.get(p.requestId)?.(p.kind, p.text)),
      registerPermissionHandler(connection, askPermission),
    ];
  }

  isRunning(chatId: string): boolean {
    return this.turns.has(chatId);
  }

  /**
   * Runs one turn. Pass the editor's cancellation token: cancelling it makes the client
   * send `$/cancelRequest`, which stops Ollama at once.
   */
  async runTurn(params: ChatStartParams, listener: TurnListener, token?: CancellationToken): Promise<TurnOutcome> {
    if (this.turns.has(params.chatId)) {
      // The daemon would answer chat_busy too, but registering a second listener would
      // steal the running turn's tokens, so refuse before sending.
      return { kind: 'failed', failure: chatBusy(params.chatId) };
    }
    this.turns.set(params.chatId, listener);
    try {
      const result = await sendRequest<ChatStartResult>(this.connection, Methods.chatStart, params, token);
      return { kind: 'finished', result };
    } catch (error) {
      const failure = toDaemonFailure(error);
      return isCancellation(failure) ? { kind: 'cancelled' } : { kind: 'failed', failure };
    } finally {
      this.turns.delete(params.chatId);
    }
  }

  /**
   * One stateless `model/chat`: the caller's messages and tools in, the reply streamed to
   * `onToken`; tool calls come back in the result. Cancelling `token` drops Ollama's stream.
   */
  async callModel(params: ModelChatParams, onToken: (kind: TokenKind, text: string) => void, token?: CancellationToken): Promise<CallOutcome> {
    this.calls.set(params.requestId, onToken);
    try {
      return { kind: 'finished', result: await sendRequest<ModelChatResult>(this.connection, Methods.modelChat, params, token) };
    } catch (error) {
      const failure = toDaemonFailure(error);
      return isCancellation(failure) ? { kind: 'cancelled' } : { kind: 'failed', failure };
    } finally {
      this.calls.delete(params.requestId);
    }
  }

  /** Stops a chat's running turn by its id; true if one was running. */
  async cancel(chatId: string): Promise<boolean> {
    try {
      const answer = await sendRequest<{ cancelled: boolean }>(this.connection, Methods.chatCancel, { chatId });
      return answer.cancelled;
    } catch {
      return false;
    }
  }

  /**
   * Whether this daemon still has the chat (one that stores chats on disk keeps them across
   * restarts). Daemons without `chat/history` keep chats in memory only: false.
   */
  async knowsChat(chatId: string): Promise<boolean> {
    try {
      await sendRequest(this.connection, Methods.chatHistory, { chatId });
      return true;
    } catch {
      return false;
    }
  }

  /** The chat's stored messages; undefined when the daemon does not have it (or cannot say). */
  async history(chatId: string): Promise<ChatHistoryResult | undefined> {
    try {
      const result = await sendRequest<ChatHistoryResult>(this.connection, Methods.chatHistory, { chatId });
      return Array.isArray(result?.messages) ? result : undefined;
    } catch {
      return undefined;
    }
  }

  /** Reverts the chat's turns from `turn` on: their file changes are put back, the turns dropped. */
  async revert(chatId: string, turn: number): Promise<RevertOutcome> {
    try {
      return { kind: 'reverted', result: await sendRequest<ChatRevertResult>(this.connection, Methods.chatRevert, { chatId, turn }) };
    } catch (error) {
      return { kind: 'failed', failure: toDaemonFailure(error) };
    }
  }

  async listModels(refresh = false): Promise<ModelsOutcome> {
    try {
      const result = await sendRequest<ChatModelsResult>(this.connection, Methods.chatModels, { refresh });
      return { kind: 'models', models: Array.isArray(result?.models) ? result.models : [] };
    } catch (error) {
      const failure = toDaemonFailure(error);
      return isMethodNotFound(failure) ? { kind: 'unsupported' } : { kind: 'failed', failure };
    }
  }

  dispose(): void {
    for (const registration of this.registrations) registration.dispose();
    this.turns.clear();
    this.calls.clear();
  }

  /** A listener that throws must not break the routing of the next message. */
  private notify(chatId: string, deliver: (listener: TurnListener) => void): void {
    const listener = this.turns.get(chatId);
    if (listener === undefined) return; // a turn that already ended, or another client's chat
    try {
      deliver(listener);
    } catch (error) {
      console.error(`ollama-chat: a chat listener failed: ${(error as Error)?.message ?? error}`);
    }
  }
}

function chatBusy(chatId: string): DaemonFailure {
  return {
    code: ErrorCodes.chatBusy,
    kind: 'chat_busy',
    message: `Chat "${chatId}" is still answering.`,
    data: { chatId },
  };
}
