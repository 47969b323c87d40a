"""The shipped golden cases: one folder per case beside this file (format: README.md here),
written by ``make_cases.py`` from its table.  Names starting with ``_`` or ``.`` are not
cases (this package's own files, ``__pycache__``)."""
