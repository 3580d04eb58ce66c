"""The commands: argv, printing and exit codes. ``python -m adain.X`` runs ``adain.commands.X``.

Only this package (and the web app's launcher) reads flags; the library below never sees argv.
Each command's ``entry()`` sets up its process first (adain.runtime.set_up).
"""
