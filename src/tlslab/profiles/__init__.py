"""Client profiles: what a given client offers and how its verifier judges a chain.

One TOML file per client in ``data/`` (DESIGN.md "Packages": profiles/), each fact with
its source.  :func:`load_profile` and :func:`profile_names` are the API; ``simulate``
(a later command) reads the same files.
"""
from .model import (Profile, ProfileError, builtin_profile_names, close_names, load_profile,
                    load_profile_file, profile_names)

__all__ = ["Profile", "ProfileError", "builtin_profile_names", "close_names", "load_profile",
           "load_profile_file", "profile_names"]
