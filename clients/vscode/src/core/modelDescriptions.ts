/** How a model is presented in the model picker and the status bar. */
import type { ModelInfo } from './protocol';

export interface ModelChoice {
  name: string;
  /** Short facts: size class, quantization, download size. */
  description: string;
  /** What the model can do, in the words that matter for chatting about code. */
  detail: string;
}

/** Models that cannot chat (embedding models) are left out; unknown capabilities are kept. */
export function modelChoices(models: readonly ModelInfo[]): ModelChoice[] {
  return models
    .filter(canChat)
    .map((m) => ({ name: m.name, description: describeSize(m), detail: describeCapabilities(m) }));
}

export function canChat(model: ModelInfo): boolean {
  return !Array.isArray(model.capabilities) || model.capabilities.length === 0 || model.capabilities.includes('completion');
}

function describeSize(model: ModelInfo): string {
  const parts = [model.parameterSize, model.quantization, model.sizeBytes ? formatBytes(model.sizeBytes) : undefined];
  return parts.filter((p): p is string => typeof p === 'string' && p !== '').join(' · ');
}

function describeCapabilities(model: ModelInfo): string {
  const capabilities = model.capabilities ?? [];
  const parts: string[] = [];
  // An empty list means Ollama did not say (older versions), not that the model lacks tools.
  if (capabilities.length > 0) {
    parts.push(capabilities.includes('tools') ? 'tools: can read and edit your files' : 'no tools: chat only, cannot read your files');
  }
  if (capabilities.includes('thinking')) parts.push('thinking');
  if (capabilities.includes('vision')) parts.push('vision');
  if (typeof model.contextLength === 'number') parts.push(`context ${model.contextLength.toLocaleString('en-US')} tokens`);
  return parts.join(' · ');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Ollama treats `llama3.2` and `llama3.2:latest` as the same model. */
export function sameModel(a: string, b: string): boolean {
  const full = (name: string) => (name.includes(':') ? name : `${name}:latest`);
  return a.trim() !== '' && full(a.trim()) === full(b.trim());
}
