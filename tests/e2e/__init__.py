"""End-to-end tests: the CLI and the Discord bot through the fakes, servers, faults, load."""
