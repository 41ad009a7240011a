"""The write side: validate a command and append it to the command log."""
