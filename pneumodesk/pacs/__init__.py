"""X-rays from the hospital's PACS: connections (node store + OS keyring), echo, series search and retrieval into a
workstation-local cache, over DICOMweb (``dicomweb-client``) or DIMSE (``pynetdicom``).

Layering: imports ``node`` and ``imaging``, never ``client``, ``gui`` or Qt; the coordinator never imports it.
Nothing here talks to the federation: PACS traffic stays inside the hospital.
"""
