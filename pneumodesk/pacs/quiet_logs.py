"""Keep the PACS libraries from logging patient attributes or secrets.

pynetdicom logs every C-FIND/C-GET/C-MOVE identifier and C-FIND result (patient ID and name included) at INFO;
dicomweb-client and urllib3 log request URLs (with the search's query string) and headers (with the Authorization
header) at DEBUG. ``silence_library_logs()`` raises those loggers to WARNING, whatever level the application's root
logger is at; a test runs searches and retrievals with the root logger at DEBUG and finds none of it in the log.
"""

from __future__ import annotations

import logging

LIBRARY_LOGGERS = ("pynetdicom", "dicomweb_client", "urllib3.connectionpool")


def silence_library_logs() -> None:
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET (0) included: never inherit a verbose root level
            logger.setLevel(logging.WARNING)
