"""The tools the model may call on the editor's workspace.

Pure and synchronous: no JSON-RPC, no asyncio. `workspace` confines every path
and reads files safely, `walk` lists the tree as git would (`.gitignore`),
`globs` matches `**/*.py`-style patterns, `edits` describes and applies
changes, `builtin` holds the tool functions and `registry` their names,
descriptions and argument schemas.
"""
