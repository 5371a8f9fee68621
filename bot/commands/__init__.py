"""Extra ``qabot`` sub-commands: each module here defines ``register(app: typer.Typer)``."""
