"""From a violation to a durable case: evidence files, the CaseReport, the case-writer thread."""
