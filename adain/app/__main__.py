"""python -m adain.app: the command lives in adain.commands.app."""

from adain.commands.app import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
