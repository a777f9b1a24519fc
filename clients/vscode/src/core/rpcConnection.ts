/**
 * The one thing the core needs from a JSON-RPC peer. Both vscode-languageclient's
 * `LanguageClient` (in VS Code) and vscode-jsonrpc's `MessageConnection` (in the tests)
 * have this shape, so the same core runs against either.
 */
import type { CancellationToken, Disposable } from 'vscode-jsonrpc/node';

export interface RpcConnection {
  sendRequest<R>(method: string, param: unknown, token?: CancellationToken): Promise<R>;
  onNotification(method: string, handler: (params: any) => void): Disposable;
  onRequest(method: string, handler: (params: any, token: CancellationToken) => unknown): Disposable;
}

/**
 * Sends a request with by-name params. Never passes an explicit `undefined` token:
 * vscode-jsonrpc would then send the params by position (`[params, null]`), which the
 * daemon rejects.
 */
export function sendRequest<R>(
  connection: RpcConnection,
  method: string,
  params: object,
  token?: CancellationToken,
): Promise<R> {
  return token === undefined
    ? connection.sendRequest<R>(method, params)
    : connection.sendRequest<R>(method, params, token);
}
