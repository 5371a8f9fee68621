"""The bot's cogs, loaded by ``QabotBot.setup_hook``: asking, admin and feedback."""
