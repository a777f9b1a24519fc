/**
 * Daemon errors in the words of a VS Code user. The daemon's own messages are already
 * readable but speak of `initializationOptions` and `OLLAMA_HOST`; here the fix names the
 * extension's settings and commands instead.
 */
import { CommandIds } from './commandIds';
import type { DaemonFailure } from './daemonFailure';
import type { Explanation, FixAction } from './explanation';

const selectModel: FixAction = { title: 'Select Model', command: CommandIds.selectModel };
const showLog: FixAction = { title: 'Show Server Log', command: CommandIds.showServerLog };
const restartServer: FixAction = { title: 'Restart Server', command: CommandIds.restartServer };
const hostSetting: FixAction = {
  title: 'Set Ollama Address',
  command: CommandIds.openSettings,
  arguments: ['ollamaChat.ollamaHost'],
};

export function explainFailure(failure: DaemonFailure): Explanation {
  switch (failure.kind) {
    case 'ollama_unreachable': {
      const address = stringField(failure, 'address') ?? 'its address';
      if (servedByOpenAI(failure)) {
        return {
          markdown:
            `Cannot reach the OpenAI-compatible server at ${code(address)}. Start it and send your ` +
            `message again; if it runs elsewhere, set ${code('OPENAI_BASE_URL')} to its address in the ` +
            'environment VS Code is started from, and start VS Code again.',
          actions: [showLog],
        };
      }
      return {
        markdown:
          `Cannot reach Ollama at ${code(address)}. Start Ollama (open the Ollama app, or run ` +
          `${code('ollama serve')} in a terminal), or set **ollamaChat.ollamaHost** to the address ` +
          `where it runs. Then send your message again.`,
        actions: [hostSetting],
      };
    }
    case 'model_not_found': {
      const model = stringField(failure, 'model') ?? 'this model';
      if (servedByOpenAI(failure)) {
        return {
          markdown:
            `The OpenAI-compatible server does not serve the model ${code(model)}. ` +
            'Choose one it serves with **Ollama: Select Model**.',
          actions: [selectModel],
        };
      }
      const pull = `ollama pull ${model}`;
      return {
        markdown:
          `Ollama does not have the model ${code(model)}. Download it with ${code(pull)}, ` +
          `or choose one you have with **Ollama: Select Model**.`,
        actions: [selectModel, { title: `Copy "${pull}"`, command: CommandIds.copyToClipboard, arguments: [pull] }],
      };
    }
    case 'no_model':
      return {
        markdown:
          'No model is chosen yet. Pick one with **Ollama: Select Model** (or set **ollamaChat.model**; ' +
          `${code('ollama list')} shows the models you have).`,
        actions: [selectModel],
      };
    case 'chat_busy':
      return {
        markdown: 'This chat is still answering your previous message. Wait for it to finish or press Stop, then send again.',
        actions: [],
      };
    case 'upstream_error':
      return {
        // The daemon's text already starts "Ollama error ..." and carries Ollama's words.
        markdown: failure.message,
        actions: [selectModel, showLog],
      };
    case 'method_not_found':
      return {
        markdown:
          `The installed ollama-chatd is too old for this extension (${failure.message}). ` +
          `Update it (${code('pipx upgrade ollama-chatd')} or ${code('pip install -U ollama-chatd')}), ` +
          'then run **Ollama: Restart Server**.',
        actions: [restartServer],
      };
    case 'invalid_params': {
      const field = stringField(failure, 'field') ?? '';
      const setting = field.startsWith('initializationOptions.')
        ? `ollamaChat.${field.slice('initializationOptions.'.length)}`
        : undefined;
      return setting
        ? {
            markdown: `The setting **${setting}** is not valid: ${failure.message}`,
            actions: [{ title: 'Open Settings', command: CommandIds.openSettings, arguments: [setting] }],
          }
        : { markdown: `ollama-chatd refused the request: ${failure.message}`, actions: [showLog] };
    }
    case 'server_not_running':
      return {
        markdown: 'The ollama-chatd server is not running (it stopped or failed to start). Restart it with **Ollama: Restart Server**; **Ollama: Show Server Log** tells why it stopped.',
        actions: [restartServer, showLog],
      };
    case 'internal_error':
      return {
        markdown: failure.message, // it says "Internal error in ollama-chatd: ..., please report it"
        actions: [showLog],
      };
    default:
      // Unknown kinds are handled by their message, which the daemon writes for a person.
      return { markdown: `ollama-chatd could not answer: ${failure.message}`, actions: [showLog] };
  }
}

/** The daemon talks to an OpenAI-compatible server, not Ollama (`data.backend`). */
export function servedByOpenAI(failure: DaemonFailure): boolean {
  return failure.data.backend === 'openai';
}

function stringField(failure: DaemonFailure, name: string): string | undefined {
  const value = failure.data[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function code(text: string): string {
  return '`' + text.replace(/`/g, "'") + '`';
}
