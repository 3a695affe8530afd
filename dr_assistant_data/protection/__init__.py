"""Protection of patient data that is not tied to one store: field encryption keys and
the log filter that redacts identifiers."""
