/**
 * The `@ollama` chat participant: one VS Code chat session is one daemon chat, each request
 * one `chat/start`, streamed into the response as it arrives.
 */
import * as vscode from 'vscode';
import type { ChatClient, TurnOutcome } from '../core/chatClient';
import { lastTurnMetadata, newChatId, type TurnMetadata } from '../core/chatSession';
import type { Explanation } from '../core/explanation';
import type { Settings } from '../core/settings';
import { ResponseRenderer } from './responseRenderer';

export type Acquisition =
  | { kind: 'ready'; chat: Pick<ChatClient, 'runTurn'>; serverSession: string }
  | { kind: 'unavailable'; explanation: Explanation };

export interface ParticipantDeps {
  /** The running daemon, started on first use. */
  acquireServer(): Promise<Acquisition>;
  settings(): Settings;
  resolveToolPath(toolPath: string): vscode.Uri | undefined;
  /** Told how every turn ended (the status bar learns reachability from it). */
  observeTurn?(outcome: TurnOutcome): void;
}

export function createChatRequestHandler(deps: ParticipantDeps): vscode.ChatRequestHandler {
  return async (request, context, stream, token): Promise<vscode.ChatResult> => {
    const previous = lastTurnMetadata(context.history);
    const chatId = previous?.chatId ?? newChatId();
    const renderer = new ResponseRenderer(stream, (p) => deps.resolveToolPath(p));

    const server = await deps.acquireServer();
    if (server.kind === 'unavailable') {
      renderer.explain(server.explanation);
      return { metadata: { chatId, serverSession: previous?.serverSession ?? '' } satisfies TurnMetadata };
    }
    if (previous !== undefined && previous.serverSession !== server.serverSession) {
      // The daemon keeps chats in memory only; after a restart this chat starts afresh.
      stream.progress('ollama-chatd was restarted since the last answer: the model does not remember the earlier messages.');
    }

    const model = deps.settings().model.trim();
    const outcome = await server.chat.runTurn(
      { chatId, prompt: request.prompt, ...(model ? { model } : {}) },
      renderer,
      token, // the Stop button: the client sends $/cancelRequest and the daemon drops Ollama's stream
    );
    renderer.finish(outcome);
    deps.observeTurn?.(outcome);
    return { metadata: { chatId, serverSession: server.serverSession } satisfies TurnMetadata };
  };
}
