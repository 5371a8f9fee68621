"""qabot: answers questions from your documents with verified, verbatim citations.

The public API is small::

    from qabot import Pipeline, Settings
    answer = Pipeline(Settings()).ask("When does Russia plan to leave the ISS?")
    print(answer.text, [c.excerpt for c in answer.citations])
"""

from qabot.errors import QabotError
from qabot.settings import Settings
from qabot.types import Answer, Chunk, Citation, Document, Hit, IngestReport

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "Hit",
    "IngestReport",
    "Pipeline",
    "QabotError",
    "Settings",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing qabot must not load Chroma or the model
    if name == "Pipeline":
        from answering.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
