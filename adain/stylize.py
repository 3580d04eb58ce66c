"""python -m adain.stylize: the command lives in adain.commands.stylize."""

from adain.commands.stylize import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
