"""python -m adain.bench: the command lives in adain.commands.bench."""

from adain.commands.bench import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
