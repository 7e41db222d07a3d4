"""Entry point: `python run.py --strategy random` runs a study; `python run.py --help` for more."""

import os
import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["review"]:
        # The same command as through hparams_lab.cli.app, without importing the study's
        # machinery that the app's other commands need. review does no linear algebra, so
        # numpy's OpenBLAS may start one thread rather than one per core (BENCHMARKS.md).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from hparams_lab.cli.review import review

        review.main(sys.argv[2:], prog_name="run.py review")
    else:
        from hparams_lab.cli.app import main

        main()
