"""The logic the main window delegates to, one controller per concern.

- `library`: loading the library, collections, removing documents.
- `indexing`: adding files and folders, the indexing run (queue, progress, cancel, failures) and
  the watched folders.
- `outdated`: after an upgrade, the documents an older release indexed, indexed again on unlock.
- `conversation`: asking, the streamed answer, stop, regenerate, copy, the conversations list.
- `ollama`: whether Ollama answers (probed now and then) and which model it would use.
- `settings`: the vault's settings, saved off the UI thread.

Controllers are QObjects that build no widgets: they are handed the panes they drive, run slow
work on the worker pool, and reach the window only through `Host` (confirm, report an error,
show a message) and their signals. Each has `attach(services)` and `detach()` for the vault's
unlock and lock.
"""
