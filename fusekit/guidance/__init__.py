"""Producing guidance for fusion: descriptions in words (`describe`), text features (`text`), image features
(`vision`) and TeSG's semantics (`semantics`). Peers of `fusekit.models`: neither imports the other.
"""
