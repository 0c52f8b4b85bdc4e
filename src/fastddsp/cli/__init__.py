"""The `fastddsp` command (``main``): one module per sub-command, each with
``register(subparsers)``, which adds its options, and ``run(args) -> int``.

Each ``run`` imports the library inside it, not at the top of its module: a command then loads
only what it uses (Lightning alone takes seconds to import), and works without the optional
extras of the other commands ([train], [app], [live] in pyproject.toml), whose absence
``main`` reports as one line naming the install command. Only the error type and the name
tables that options list as choices (``TRACKERS``, ``PRESETS``) are imported at the top.
"""
