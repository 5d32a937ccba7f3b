"""Adapters that make runstore the memory of agent frameworks (each an extra: see pyproject)."""
