"""python -m adain.export: the command lives in adain.commands.export."""

from adain.commands.export import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
