"""Errors whose message is meant for the user: one short line, no traceback."""


class QabotError(Exception):
    """Base class: ``str(error)`` is a complete, user-facing sentence."""


class InputError(QabotError):
    """The question or a path given by the user cannot be used."""


class StoreError(QabotError):
    """The vector store cannot be opened, read or written."""


class EmbeddingError(StoreError):
    """The embedding server failed or answered something unusable.

    A :class:`StoreError`, so an ingest stopped by it says where it stopped, as for the store.
    """


class BackendError(QabotError):
    """The answering backend is misconfigured or unavailable."""


class SettingsError(QabotError):
    """A setting (environment variable or ``.env`` line) has a value qabot cannot use."""
