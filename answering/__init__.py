"""Answering: the one pipeline every front end calls (retrieve, answer, verify citations)."""
