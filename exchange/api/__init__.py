"""OneHub package."""
