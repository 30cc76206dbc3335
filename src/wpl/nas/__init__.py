"""Neural architecture search with WPL: the search spaces (``spaces/``), the search loop (``search/``) and
training a found cell from scratch (``final/``)."""

