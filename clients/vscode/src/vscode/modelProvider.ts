/**
 * Ollama's models as VS Code language models (`vscode.lm`), answered through the daemon's
 * stateless `model/chat`: VS Code's chat and agent mode keep the conversation and run their
 * own tools; the daemon only streams the model's reply and hands tool calls back.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import type { ModelsOutcome } from '../core/chatClient';
import { explainFailure } from '../core/explainFailure';
import { asPlainText, type Explanation } from '../core/explanation';
import { estimateTokens, languageModels, type LanguageModelInformation } from '../core/modelCall';
import type { CallMessage, ToolDefinition, WireToolCall } from '../core/protocol';
import type { ServerAcquisition } from '../core/serverManager';

/** What a model listing found: the models, or why there are none. */
export type ModelListing = ModelsOutcome | { kind: 'unavailable'; explanation: Explanation };

export interface ModelProviderDeps {
  acquireServer(): Promise<ServerAcquisition>;
  /** The `ollamaChat.model` setting: listed first, so the picker starts with it. */
  configuredModel(): string;
  /** Told what every model listing found (the status bar learns reachability from it). */
  observeModels(outcome: ModelListing): void;
}

/** VS Code shows a model's reasoning apart from its answer where it has this part (1.139
 * does; the 1.104 API this extension is built against does not declare it). */
const ThinkingPart = (vscode as unknown as { LanguageModelThinkingPart?: new (value: string) => vscode.LanguageModelTextPart })
  .LanguageModelThinkingPart;

export function createModelProvider(deps: ModelProviderDeps): vscode.LanguageModelChatProvider<LanguageModelInformation> {
  return {
    async provideLanguageModelChatInformation() {
      const server = await deps.acquireServer();
      if (server.kind === 'unavailable') {
        deps.observeModels(server);
        return [];
      }
      const outcome = await server.chat.listModels();
      deps.observeModels(outcome);
      return outcome.kind === 'models' ? languageModels(outcome.models, deps.configuredModel().trim()) : [];
    },

    async provideLanguageModelChatResponse(model, messages, options, progress, token) {
      const server = await deps.acquireServer();
      if (server.kind === 'unavailable') throw new Error(asPlainText(server.explanation.markdown));
      const outcome = await server.chat.callModel(
        { requestId: `vscode-lm-${randomUUID()}`, model: model.id, messages: toWireMessages(messages), tools: toolDefinitions(options.tools) },
        (kind, text) => {
          if (kind === 'content') progress.report(new vscode.LanguageModelTextPart(text));
          else if (kind === 'thinking' && ThinkingPart !== undefined) progress.report(new ThinkingPart(text));
        },
        token, // VS Code's Stop: $/cancelRequest, and the daemon drops Ollama's stream
      );
      if (outcome.kind === 'failed') throw new Error(asPlainText(explainFailure(outcome.failure).markdown));
      if (outcome.kind !== 'finished') return;
      for (const call of outcome.result.message.toolCalls ?? []) {
        progress.report(new vscode.LanguageModelToolCallPart(call.id || `call-${randomUUID()}`, call.name, call.arguments));
      }
    },

    async provideTokenCount(_model, text) {
      return estimateTokens(typeof text === 'string' ? text : toWireMessages([text]).map((m) => m.content).join('\n'));
    },
  };
}

/** VS Code's messages in the daemon's terms: tool results become `tool` messages. */
export function toWireMessages(messages: readonly vscode.LanguageModelChatRequestMessage[]): CallMessage[] {
  const toolNames = new Map<string, string>();
  const wire: CallMessage[] = [];
  for (const message of messages) {
    const role = message.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant'
      : message.role === vscode.LanguageModelChatMessageRole.User ? 'user' : 'system';
    const text: string[] = [];
    const images: string[] = [];
    const toolCalls: WireToolCall[] = [];
    for (const part of message.content) {
      if (part instanceof vscode.LanguageModelTextPart) text.push(part.value);
      else if (part instanceof vscode.LanguageModelToolCallPart) {
        toolNames.set(part.callId, part.name);
        toolCalls.push({ id: part.callId, name: part.name, arguments: part.input as Record<string, unknown> });
      } else if (part instanceof vscode.LanguageModelToolResultPart) {
        wire.push({ role: 'tool', content: textOf(part.content), toolCallId: part.callId, toolName: toolNames.get(part.callId) });
      } else if (isImage(part)) images.push(Buffer.from(part.data).toString('base64'));
    }
    if (text.length > 0 || images.length > 0 || toolCalls.length > 0) {
      wire.push({
        role,
        content: text.join(''),
        ...(images.length > 0 ? { images } : {}),
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
      });
    }
  }
  return wire;
}

function toolDefinitions(tools: readonly vscode.LanguageModelChatTool[] | undefined): ToolDefinition[] | undefined {
  if (tools === undefined || tools.length === 0) return undefined;
  return tools.map((tool) => ({ name: tool.name, description: tool.description, ...(tool.inputSchema ? { parameters: tool.inputSchema } : {}) }));
}

function textOf(parts: readonly unknown[]): string {
  return parts.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : '')).join('');
}

/** VS Code's LanguageModelDataPart (newer than the API this extension is built against). */
function isImage(part: unknown): part is { mimeType: string; data: Uint8Array } {
  const candidate = part as { mimeType?: unknown; data?: unknown } | null;
  return typeof candidate?.mimeType === 'string' && candidate.mimeType.startsWith('image/') && candidate.data instanceof Uint8Array;
}
