"""workbench: the Qt desktop app and the command line."""
