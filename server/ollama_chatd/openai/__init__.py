"""A backend for any server that speaks the OpenAI Chat Completions API
(llama.cpp's llama-server, vLLM, SGLang, LM Studio, LocalAI, a LiteLLM gateway).

Layers, as in `ollama/`: `wire` (JSON shapes, pure), `errors` (what failures mean),
`client` (httpx and server-sent events; implements `llm.ChatBackend`).

The package itself imports nothing: the daemon loads it only when the editor
chooses `backend: "openai"`.
"""
