"""python -m adain.stylize_dataset: the command lives in adain.commands.stylize_dataset."""

from adain.commands.stylize_dataset import entry, main  # noqa: F401  (main: the command as a function)

if __name__ == "__main__":
  entry()
