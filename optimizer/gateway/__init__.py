"""The site's IQ Gateway (Envoy) as a live surplus source, read with pyenphase, and its fake.

``source`` owns the pyenphase ``Envoy`` (no pyenphase type leaves it), ``reading`` checks a
reading against physics and turns it into the engine's ``Surplus`` (pure), ``token`` keeps the
owner's token (0600, never logged), ``fake`` and ``fakepayloads`` are the fake gateway on the
fake cloud's site model (tests and ``make demo``).
"""
