/** Command ids, shared by package.json, the commands module and the fix buttons. */
export const CommandIds = {
  selectModel: 'ollamaChat.selectModel',
  showServerLog: 'ollamaChat.showServerLog',
  restartServer: 'ollamaChat.restartServer',
  /** Copies its one string argument to the clipboard (install and pull commands). */
  copyToClipboard: 'ollamaChat.copyToClipboard',
  /** Opens the Settings UI filtered to its one argument (a setting id), or to all ours. */
  openSettings: 'ollamaChat.openSettings',
  /** Reverts the turn its one argument (a `RevertTarget`) names, after asking. */
  revertTurn: 'ollamaChat.revertTurn',
} as const;

export const PARTICIPANT_ID = 'ollama-chatd.ollama';
export const SETTINGS_SECTION = 'ollamaChat';
