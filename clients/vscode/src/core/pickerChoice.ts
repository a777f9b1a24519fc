/**
 * Which model `@ollama` uses when VS Code's chat model picker and the `ollamaChat.model`
 * setting (Ollama: Select Model) disagree: the one the user chose last. The picker's
 * choice is new when it differs from the one seen with the previous message.
 */
import { sameModel } from './modelDescriptions';

export interface ModelDecision {
  model: string;
  /** The picker's model was chosen since the last message: save it as the setting too. */
  adoptPicker: boolean;
}

export class PickerChoice {
  private lastPicked: string | undefined;

  /** `picked`: the picker's model when it is one of ours, else undefined. */
  decide(picked: string | undefined, setting: string): ModelDecision {
    const changed = picked !== undefined && this.lastPicked !== undefined && picked !== this.lastPicked;
    this.lastPicked = picked ?? this.lastPicked;
    if (picked === undefined) return { model: setting, adoptPicker: false };
    if (setting === '' || changed) return { model: picked, adoptPicker: !sameModel(picked, setting) };
    return { model: setting, adoptPicker: false };
  }
}
