"""qabot's front ends: the command line (``bot.cli``) and the Discord bot (``bot.discord``)."""
