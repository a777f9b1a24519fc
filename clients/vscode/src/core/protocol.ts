/**
 * The messages of the ollama-chatd wire protocol (protocol/README.md in the repository),
 * as TypeScript types. Only what the extension reads or sends is typed; the daemon may add
 * fields (section 11), so nothing here should be used to reject a message.
 */

export const Methods = {
  chatStart: 'chat/start',
  chatCancel: 'chat/cancel',
  chatToken: 'chat/token',
  chatToolCall: 'chat/toolCall',
  chatStatus: 'chat/status',
  chatModels: 'chat/models',
  /** From daemons that keep chats across restarts (issue 5). */
  chatHistory: 'chat/history',
  /** Puts back the files a turn and the later ones changed, and drops those turns (issue 18). */
  chatRevert: 'chat/revert',
  requestPermission: 'chat/requestPermission',
  /** The stateless model call behind the language-model provider (issue 12). */
  modelChat: 'model/chat',
  modelToken: 'model/token',
} as const;

/** JSON-RPC error codes the daemon uses (protocol section 7). */
export const ErrorCodes = {
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  ollamaUnreachable: -32001,
  modelNotFound: -32002,
  upstreamError: -32003,
  chatBusy: -32004,
  requestCancelled: -32800,
  /** vscode-jsonrpc's own codes: a pending request whose connection went away, and a
   * request sent while the language client is not running. */
  pendingResponseRejected: -32097,
  connectionInactive: -32096,
} as const;

export interface InitializationOptions {
  ollamaHost?: string;
  model?: string;
  maxToolRounds?: number;
  autoApprove?: string[];
  mcpServers?: Record<string, unknown>;
}

export interface ChatStartParams {
  chatId: string;
  prompt: string;
  model?: string;
  system?: string;
  think?: boolean | 'low' | 'medium' | 'high';
  options?: Record<string, unknown>;
}

export type StopReason = 'end_turn' | 'max_tokens' | 'cancelled' | 'max_tool_rounds' | (string & {});

export interface ChatStartResult {
  chatId: string;
  stopReason: StopReason;
  message: { role: 'assistant'; content: string; thinking?: string };
  usage?: { promptTokens: number; completionTokens: number; totalDurationMs: number };
}

export type TokenKind = 'content' | 'thinking' | (string & {});

export interface ChatHistoryResult {
  chatId: string;
  messages: { role: 'system' | 'user' | 'assistant' | 'tool' | (string & {}); content: string }[];
}

export interface ChatRevertParams {
  chatId: string;
  /** The 0-based index of the turn's user message among the chat's user messages. */
  turn: number;
}

export interface ChatRevertResult {
  restored: string[];
  skipped: { path: string; reason: string }[];
  commandsNotUndone: string[];
}

export interface ChatTokenParams {
  chatId: string;
  kind: TokenKind;
  text: string;
  seq: number;
}

export type ToolCallStatus =
  | 'pending'
  | 'awaiting_permission'
  | 'running'
  | 'completed'
  | 'failed'
  | 'denied'
  | 'cancelled'
  | (string & {});

export interface ToolCallParams {
  chatId: string;
  callId: string;
  name: string;
  arguments: Record<string, unknown>;
  status: ToolCallStatus;
  output?: string;
  /** With `running` (run_command): how many characters of output there were in all. */
  outputLength?: number;
  error?: string;
}

export type ChatState = 'waiting' | 'streaming' | 'retrying' | 'truncated' | 'no_tools' | (string & {});

export interface ChatStatusParams {
  chatId: string;
  state: ChatState;
  message?: string;
}

export interface PermissionRequestParams {
  chatId: string;
  callId: string;
  name: string;
  arguments: Record<string, unknown>;
  title: string;
  diff: string;
}

export type PermissionDecision = 'allow' | 'allow_always' | 'deny';

export interface PermissionResult {
  decision: PermissionDecision;
}

export interface ModelInfo {
  name: string;
  sizeBytes?: number;
  family?: string;
  parameterSize?: string;
  quantization?: string;
  capabilities?: string[];
  contextLength?: number | null;
}

export interface ChatModelsResult {
  models: ModelInfo[];
}

export interface WireToolCall {
  id?: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface CallMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  images?: string[];
  toolCalls?: WireToolCall[];
  toolName?: string;
  toolCallId?: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  parameters?: object;
}

export interface ModelChatParams {
  requestId: string;
  model: string;
  messages: CallMessage[];
  tools?: ToolDefinition[];
}

export interface ModelChatResult {
  requestId: string;
  stopReason: 'end_turn' | 'max_tokens' | 'tool_calls' | 'cancelled' | (string & {});
  message: { role: 'assistant'; content: string; thinking?: string; toolCalls?: WireToolCall[] };
}

export interface ModelTokenParams {
  requestId: string;
  kind: TokenKind;
  text: string;
}

/** The tools that change the workspace and therefore ask for permission. */
export const WRITE_TOOLS: readonly string[] = ['write_file', 'edit_file', 'delete_file'];
