"""Identities, roles and the permission table every door into a running controller uses."""
