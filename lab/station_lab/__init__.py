"""The station's lab: virtual boards, a local DPS stand-in, first boot and the demo.

A distribution of its own (``station-lab``, ``lab/pyproject.toml``) that depends on the station,
never the other way: the station finds the lab's boards through the registry file the lab
writes, and its CLI gains ``station lab`` and ``station demo`` through the ``station.cli``
entry-point group. A production install (wheel or frozen app) carries none of it.
"""
