"""python -m adain.encode_style: the command lives in adain.commands.encode_style."""

from adain.commands.encode_style import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
