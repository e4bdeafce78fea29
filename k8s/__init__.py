"""Render, validate and apply native Kubernetes manifests.

The pipeline has one module per stage: variables → render → validate → order →
apply. `cli` wires command-line arguments to the stages and nothing else.
"""
