"""Exporting: sources per dialect, file writers, and the engine that runs an export."""
