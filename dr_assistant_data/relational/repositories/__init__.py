"""Repositories: the contract's CRUD methods and the domain reads, one module per area."""
