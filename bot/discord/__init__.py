"""The Discord front end: the bot (``app``), its cogs, and what they share (rendering,
streamed messages, answer counters, the feedback store)."""
