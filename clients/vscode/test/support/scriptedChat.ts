/** A stand-in for the core's ChatClient: plays scripted daemon events into a turn. */
import type { CancellationToken } from 'vscode-jsonrpc/node';
import type { TurnListener, TurnOutcome } from '../../src/core/chatClient';
import type { ChatHistoryResult, ChatStartParams, ChatStatusParams, ToolCallParams } from '../../src/core/protocol';

export type ScriptedEvent =
  | { token: string; kind?: 'content' | 'thinking' }
  | { toolCall: Omit<ToolCallParams, 'chatId'> }
  | { status: Omit<ChatStatusParams, 'chatId'> };

export class ScriptedChat {
  readonly turns: { params: ChatStartParams; token: CancellationToken | undefined }[] = [];
  /** Chats this "daemon" still has (as one with a chat store would after a restart). */
  readonly storedChats = new Set<string>();

  constructor(
    private readonly events: ScriptedEvent[],
    private readonly outcome: TurnOutcome | ((token: CancellationToken | undefined) => TurnOutcome),
  ) {}

  async knowsChat(chatId: string): Promise<boolean> {
    return this.storedChats.has(chatId);
  }

  /** The chat as a daemon with a store keeps it: one user message per turn run. */
  async history(chatId: string): Promise<ChatHistoryResult | undefined> {
    const turns = this.turns.filter((turn) => turn.params.chatId === chatId);
    if (turns.length === 0) return undefined;
    return { chatId, messages: turns.map((turn) => ({ role: 'user', content: turn.params.prompt })) };
  }

  async runTurn(params: ChatStartParams, listener: TurnListener, token?: CancellationToken): Promise<TurnOutcome> {
    this.turns.push({ params, token });
    for (const event of this.events) {
      if ('token' in event) listener.onToken?.(event.kind ?? 'content', event.token);
      else if ('toolCall' in event) listener.onToolCall?.({ chatId: params.chatId, ...event.toolCall });
      else listener.onStatus?.({ chatId: params.chatId, ...event.status });
    }
    return typeof this.outcome === 'function' ? this.outcome(token) : this.outcome;
  }
}

export function finished(content: string, stopReason = 'end_turn'): TurnOutcome {
  return { kind: 'finished', result: { chatId: 'x', stopReason, message: { role: 'assistant', content } } };
}
