"""The legacy instruction file: ``action|instance|version|dd/MM/yyyy-HH:MM``, one change request per line.

- :mod:`.parser` reads the text (no database);
- :mod:`.importer` turns instructions into change requests through :mod:`instances.workflow`;
- :mod:`.report` is the per-line answer every caller (page, API, command, git source) shows as it is;
- :mod:`.export` writes the open scheduled requests back in the same format;
- :mod:`.sources` reads the file from a git repository, :mod:`.jobs` polls the repositories.
"""
