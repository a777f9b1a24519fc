/**
 * The `@ollama` chat participant: one VS Code chat session is one daemon chat, each request
 * one `chat/start`, streamed into the response as it arrives.
 */
import * as vscode from 'vscode';
import { promptWithAttachments } from '../core/attachments';
import type { ChatClient, TurnOutcome } from '../core/chatClient';
import { lastTurnMetadata, newChatId, type TurnMetadata } from '../core/chatSession';
import { CommandIds } from '../core/commandIds';
import type { Explanation } from '../core/explanation';
import type { Settings } from '../core/settings';
import { turnPrompts, type RevertTarget } from '../core/turnRevert';
import { resolveToolPath, type WorkspaceFolderLike } from '../core/workspacePaths';
import { attachmentsOf } from './attachments';
import { ResponseRenderer } from './responseRenderer';

export type Acquisition =
  | { kind: 'ready'; chat: Pick<ChatClient, 'runTurn' | 'knowsChat' | 'history'>; serverSession: string }
  | { kind: 'unavailable'; explanation: Explanation };

export interface ParticipantDeps {
  /** The running daemon, started on first use. */
  acquireServer(): Promise<Acquisition>;
  settings(): Settings;
  /** The window's workspace folders (tool paths are relative to them). */
  workspaceFolders(): WorkspaceFolderLike[];
  /** Told how every turn ended (the status bar learns reachability from it). */
  observeTurn?(outcome: TurnOutcome): void;
  /** The model for this message, given the one picked in VS Code's chat (default: the setting). */
  chooseModel?(picked: vscode.LanguageModelChat | undefined): string;
}

export function createChatRequestHandler(deps: ParticipantDeps): vscode.ChatRequestHandler {
  return async (request, context, stream, token): Promise<vscode.ChatResult> => {
    const previous = lastTurnMetadata(context.history);
    const chatId = previous?.chatId ?? newChatId();
    const folders = deps.workspaceFolders();
    const renderer = new ResponseRenderer(stream, (toolPath) => {
      const file = resolveToolPath(toolPath, folders);
      return file === undefined ? undefined : vscode.Uri.file(file);
    });
    try {
      const prompt = promptWithAttachments(request.prompt, attachmentsOf(request.references ?? [], folders));
      const model = deps.chooseModel?.(request.model) ?? deps.settings().model;
      return await answer(deps, { prompt, model: model.trim(), stream, token, renderer, chatId, previous });
    } catch (error) {
      // A bug here must still read as a message, not as VS Code's error with a stack.
      renderer.explain({
        markdown: `The Ollama extension failed: ${(error as Error)?.message ?? String(error)}`,
        actions: [{ title: 'Show Server Log', command: CommandIds.showServerLog }],
      });
      return { metadata: { chatId, serverSession: previous?.serverSession ?? '' } satisfies TurnMetadata };
    }
  };
}

interface Turn {
  prompt: string;
  /** Empty: the daemon's default. */
  model: string;
  stream: vscode.ChatResponseStream;
  token: vscode.CancellationToken;
  renderer: ResponseRenderer;
  chatId: string;
  /** What the previous answer of this chat session recorded, if there was one. */
  previous: TurnMetadata | undefined;
}

async function answer(deps: ParticipantDeps, { prompt, model, stream, token, renderer, chatId, previous }: Turn): Promise<vscode.ChatResult> {
  const server = await deps.acquireServer();
  if (server.kind === 'unavailable') {
    renderer.explain(server.explanation);
    return { metadata: { chatId, serverSession: previous?.serverSession ?? '' } satisfies TurnMetadata };
  }
  if (previous !== undefined && previous.serverSession !== server.serverSession && !(await server.chat.knowsChat(chatId))) {
    // A daemon that keeps chats in memory only has forgotten this one: say so, since
    // the chat view still shows the earlier messages.
    stream.progress('ollama-chatd was restarted since the last answer: the model does not remember the earlier messages.');
  }

  const outcome = await server.chat.runTurn(
    { chatId, prompt, ...(model ? { model } : {}) },
    renderer,
    token, // the Stop button: the client sends $/cancelRequest and the daemon drops Ollama's stream
  );
  renderer.finish(outcome);
  if (renderer.changedFiles) await offerRevert(server.chat, stream, chatId, prompt);
  deps.observeTurn?.(outcome);
  return { metadata: { chatId, serverSession: server.serverSession } satisfies TurnMetadata };
}

/** A "Revert this turn" button under an answer that changed files, naming the daemon's turn. */
async function offerRevert(chat: Pick<ChatClient, 'history'>, stream: vscode.ChatResponseStream, chatId: string, prompt: string): Promise<void> {
  const history = await chat.history(chatId);
  const prompts = history === undefined ? [] : turnPrompts(history);
  const turn = prompts.lastIndexOf(prompt);
  if (turn < 0) return; // a daemon without a record of the turn cannot revert it
  const target: RevertTarget = { chatId, turn, prompt };
  stream.button({ title: 'Revert this turn', command: CommandIds.revertTurn, arguments: [target] });
}
