"""Example services built on cqrs."""
