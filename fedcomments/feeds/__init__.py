"""Feeds as documents, pure: reading the blog's RSS, Atom and JSON Feed (`read`) and
writing the Atom feeds of comments (`atom`)."""
