/**
 * The extension's settings and what they mean for the daemon. Reading them from VS Code
 * is the editor layer's job; this is the pure mapping.
 */
import type { InitializationOptions } from './protocol';

export interface Settings {
  /** A command line; empty means `ollama-chatd` on PATH. */
  serverCommand: string;
  ollamaHost: string;
  model: string;
  autoApprove: string[];
  /** Passed to the daemon as is: it checks them and names any problem. */
  mcpServers: Record<string, unknown>;
}

export const DEFAULT_SETTINGS: Settings = { serverCommand: '', ollamaHost: '', model: '', autoApprove: [], mcpServers: {} };

/** Only what the user set: an empty value lets the daemon use its own default. */
export function initializationOptionsFrom(settings: Settings): InitializationOptions {
  const options: InitializationOptions = { autoApprove: settings.autoApprove.filter((t) => typeof t === 'string') };
  if (settings.ollamaHost.trim() !== '') options.ollamaHost = settings.ollamaHost.trim();
  if (settings.model.trim() !== '') options.model = settings.model.trim();
  if (Object.keys(settings.mcpServers).length > 0) options.mcpServers = settings.mcpServers;
  return options;
}

/**
 * Settings the daemon only reads at `initialize`, so changing them restarts it. The model
 * is not among them: every `chat/start` names the current model, so a new choice applies
 * to the next message without a restart (which would forget the conversations).
 */
export const SETTINGS_NEEDING_RESTART: readonly (keyof Settings)[] = ['serverCommand', 'ollamaHost', 'autoApprove', 'mcpServers'];
