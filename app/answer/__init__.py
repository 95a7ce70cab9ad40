"""The answer pipeline: analysis, evidence, selection, short answer, statement, verification, rendering."""
