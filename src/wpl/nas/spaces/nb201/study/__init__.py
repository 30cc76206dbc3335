"""``wpl study SPEC.toml``: a paired study of search settings against NAS-Bench-201's truth — the spec (``spec``),
the runs and their scores (``runs``), the statistics and the report (``report``), the command (``command``)."""
