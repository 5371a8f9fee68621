"""Prompt templates, kept as data files beside this module (read with importlib.resources)."""
