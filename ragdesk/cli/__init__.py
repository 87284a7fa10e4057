"""The command line: `ragdesk` and its sub-commands. main builds the parser from the command
families (vault, library, desktop, serve, upkeep, doctor), which share cli/common.py."""
