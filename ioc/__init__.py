"""The ``ioc`` command line, settings, errors and the local runner of the IOC monitor."""
