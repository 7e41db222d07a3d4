"""The public entry point: a study's configuration, its validation, running it
(``run.run_study``), and rerunning one recorded trial (``rerun``)."""
