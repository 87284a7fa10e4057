"""The command line: `ragdesk` and its sub-commands (main builds the parser)."""
