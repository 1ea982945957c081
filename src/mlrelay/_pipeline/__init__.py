"""The offline-first delivery layer: everything between a log call and the Client.

Modules, in the order an entry travels through them:

- ``journal``: the durable on-disk journal (SQLite), run ownership and claims;
- ``pipeline``: the in-memory buffer, the writer thread and the sender thread;
- ``sender``: sending one journaled run through a Client, exactly once;
- ``sync``: ``mlrelay sync``, the same sender driven for runs no live process sends;
- ``runs``: the fluent API's state and run lifecycle (start, resume, end, exit).

This package may import the client layer (``client``, ``_artifacts``, ``_capabilities``,
``_registry``), the wire layer and ``_formats``; never the public modules above it.
"""
