"""Signals of the registry app, for the apps above it (the instances app refreshes its version catalogue)."""

from django.dispatch import Signal

# Sent after a sync wrote the tags of some repositories; ``repository_ids`` lists them.
tags_synced = Signal()
