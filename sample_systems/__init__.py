"""OneHub's sample department systems: a deterministic generator of the sources the catalog reads.

Test and demo tooling that stands in for the departments, outside the hub (it may hold plaintext
ID numbers). ``generate`` writes every source and a manifest of what the hub should load and
quarantine; ``mutate`` changes the SQL sources for incremental runs.
"""

from sample_systems.generator import DEFAULT_NOW, generate, mutate, row_count
from sample_systems.manifest import (
    DemoCompany,
    DemoHolders,
    DemoPerson,
    DirtyRow,
    Manifest,
    Mutation,
    SourceManifest,
)

__all__ = [
    "DEFAULT_NOW",
    "DemoCompany",
    "DemoHolders",
    "DemoPerson",
    "DirtyRow",
    "Manifest",
    "Mutation",
    "SourceManifest",
    "generate",
    "mutate",
    "row_count",
]
