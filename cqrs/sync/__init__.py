"""Sync: command-table streams → projection into data and history, failures, rebuild."""
