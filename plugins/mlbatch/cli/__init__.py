"""`mlbatch <command>`: the command line and the commands that need more than a few lines."""
