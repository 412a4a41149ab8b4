"""manila_protector: protection of OpenStack Manila shares.

Karbor's protectable and protection plugins for ``OS::Manila::Share`` and a
standalone, crash-safe protection worker that runs them.
"""
