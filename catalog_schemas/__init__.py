"""The catalog: departments, license types, sources and service items; holder identifiers."""
