"""Automatic rollback's analysis of a revision against its metrics: ports, the analysis (`analyze`)
and what it answers (`report`)."""
