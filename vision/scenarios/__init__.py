"""Scripted scenarios on real footage: the demo scene and the scenario benchmark."""
