/** Importing this makes `require('vscode-languageclient/node')` return the fake client. */
import * as fakeLanguageClient from './fakeLanguageClient';
import { stubModule } from './vscodeStub';

stubModule('vscode-languageclient/node', fakeLanguageClient);
