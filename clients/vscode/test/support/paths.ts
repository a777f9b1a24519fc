/** Where the tests find the repository's Python side. */
import * as path from 'node:path';

/** clients/vscode (the compiled tests live in clients/vscode/out/test/...). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
export const REPO_ROOT = path.resolve(PACKAGE_ROOT, '..', '..');
export const FAKE_OLLAMA_SCRIPT = path.join(REPO_ROOT, 'tests', 'fake_ollama.py');

/** The venv CI creates before the extension tests, unless OLLAMA_CHATD_PYTHON says otherwise. */
export const PYTHON = process.env.OLLAMA_CHATD_PYTHON
  ? path.resolve(process.env.OLLAMA_CHATD_PYTHON)
  : path.resolve(PACKAGE_ROOT, '..', '..', '.venv', 'bin', 'python');
