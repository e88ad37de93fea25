"""The ``ramparts`` command line: platform-side tools (never shipped in the layer zip)."""
