"""Retrieval: load documents, chunk them, embed and index them, and search them.

Nothing in this package knows about Discord, the command line or the answering backends.
"""
