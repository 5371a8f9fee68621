"""Answering with a generative model: the prompt (``prompt``), reading and checking its reply
(``reply``), retrying failed calls (``retry``) and the :class:`ModelAnswerer` (``answerer``)."""
