"""Inkwell's shared core: settings, database, models, storage, results and exports, the command line.

Imported by the web side and the workers alike; never imports torch or Flask.
"""

__version__ = "0.1.0"
