"""The built-in rule pack. Importing it registers every rule into the engine's BUILTIN registry.

One module per area; each rule's cases are in ``cases/<rule id>.json``.
"""

from collectors.rules.pack import (  # noqa: F401 (imported to register their rules)
    aws,
    external,
    files,
    network,
    process,
    sensor,
)
