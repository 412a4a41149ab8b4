"""Karbor's protectable and protection plugins for Manila shares, and the core they adapt.

- ``share_catalog`` / ``share_protector``: the core (explicit signatures, frozen dataclasses).
- ``protectable`` / ``protection``: Karbor's interfaces, thin adapters over the core.
- ``manila_client``: the one place python-manilaclient is called and its errors translated.
"""
