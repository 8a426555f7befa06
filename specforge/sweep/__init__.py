"""Sweeps: a spec's search space (``sweep:``, keyed by ``--set`` paths) run as trials, each an ordinary run.

- ``schema``: the section's JSON Schema (part of the spec's schema), and a sweep file's.
- ``space``: parameters, the checks the schema cannot make, the values of a trial as overrides.
- ``loading``: a spec's sweep or a sweep file, checked.
- ``trial``: one trial trained into a run directory, reporting each epoch's objective.
- ``study``/``local``/``worker``: the local backend, Optuna with a journal file and N processes.
- ``journal``: the journal file after a crash: a torn last record dropped, a lost journal refused.
- ``ray_tune``: the Ray Tune backend (``pip install 'specforge[ray]'``).
- ``results``/``display``: records, tables, results.json and best.yaml.
- ``runner``: ``run_sweep``, what ``specforge sweep`` and ``api.sweep`` call.

Optuna and Ray are imported only when a sweep runs.
"""
