"""Solar-aware charging automation for the Enphase IQ EV Charger 2."""

__version__ = "0.1.0"
