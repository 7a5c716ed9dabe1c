"""Representation analyses (CKA, rank, probes, geometry, softmax)."""
