"""Response playbooks: the ``Playbooks`` construct and its state-machine definitions."""

from cdk.playbooks.construct import DEFAULT_ROUTES, Playbooks, PlaybooksConfig, Route

__all__ = ["DEFAULT_ROUTES", "Playbooks", "PlaybooksConfig", "Route"]
