"""System services: tasks, sequences and data migrations."""
