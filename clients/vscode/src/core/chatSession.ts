/**
 * One daemon chat per VS Code chat session. VS Code gives a participant no session id, but
 * it hands back the `ChatResult` of every earlier answer in `context.history`; the chat id
 * travels there, in the result's metadata.
 */
import { randomUUID } from 'node:crypto';

/** What the participant stores in each ChatResult's `metadata`. */
export interface TurnMetadata {
  chatId: string;
  /** Which daemon process answered: after a restart the daemon has forgotten the chat. */
  serverSession: string;
}

/** The shape of a history entry that matters here (a ChatResponseTurn has `result`). */
interface HistoryEntry {
  result?: { metadata?: unknown };
}

/** The metadata of the latest answer in this session, if any. */
export function lastTurnMetadata(history: readonly unknown[]): TurnMetadata | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const metadata = (history[i] as HistoryEntry | undefined)?.result?.metadata as Partial<TurnMetadata> | undefined;
    if (typeof metadata?.chatId === 'string' && metadata.chatId !== '') {
      return { chatId: metadata.chatId, serverSession: String(metadata.serverSession ?? '') };
    }
  }
  return undefined;
}

export function newChatId(): string {
  return `vscode-${randomUUID()}`;
}

export function newServerSessionId(): string {
  return randomUUID();
}
