"""The ``dr-assistant-data`` command line: schema management, health and a demo clinic."""
