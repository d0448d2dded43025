"""Home Assistant through MQTT (docs/home-assistant.md): state out, discovery, commands in.

``topics`` names every topic; ``payloads`` builds discovery and state (pure); ``commands``
carries out Home Assistant's commands through the CLI's code (optimizer/steer.py); ``bridge``
is the one connection per process and its reconnect loop, fed by each site's tick.
"""
