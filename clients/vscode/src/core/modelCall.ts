/**
 * Ollama's models as VS Code language models, in protocol terms: what VS Code is told
 * about a model, and the estimate of a text's size in tokens. The conversion of VS Code's
 * message parts lives beside the provider (it needs the `vscode` classes).
 */
import { canChat, sameModel } from './modelDescriptions';
import type { ModelInfo } from './protocol';

export const LM_VENDOR = 'ollama-chatd';

/** When Ollama does not say, the daemon's default context window (its `maxContext`). */
const DEFAULT_CONTEXT = 8192;
const CHARS_PER_TOKEN = 3; // as the daemon estimates, erring on the safe side

export interface LanguageModelInformation {
  id: string;
  name: string;
  family: string;
  version: string;
  detail: string;
  tooltip: string;
  maxInputTokens: number;
  maxOutputTokens: number;
  capabilities: { toolCalling: boolean; imageInput: boolean };
}

/** The models VS Code lists, the configured one first (the picker starts with it). */
export function languageModels(models: readonly ModelInfo[], configured: string): LanguageModelInformation[] {
  const chatModels = models.filter(canChat);
  const isConfigured = (m: ModelInfo) => sameModel(m.name, configured);
  return [...chatModels.filter(isConfigured), ...chatModels.filter((m) => !isConfigured(m))].map(information);
}

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

function information(model: ModelInfo): LanguageModelInformation {
  const capabilities = model.capabilities ?? [];
  const context = typeof model.contextLength === 'number' && model.contextLength > 0 ? model.contextLength : DEFAULT_CONTEXT;
  return {
    id: model.name,
    name: model.name,
    family: model.family || model.name.split(':')[0],
    version: model.name.includes(':') ? model.name.split(':')[1] : 'latest',
    detail: 'Ollama',
    tooltip: [model.parameterSize, model.quantization, ...capabilities].filter(Boolean).join(' · '),
    maxInputTokens: context,
    maxOutputTokens: Math.min(context, 4096),
    // Unknown capabilities (an older Ollama) are not a refusal: tools are offered.
    capabilities: { toolCalling: capabilities.length === 0 || capabilities.includes('tools'), imageInput: capabilities.includes('vision') },
  };
}
